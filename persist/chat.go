package persist

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
)

// # Chat sessions
//
// The CHAT projection is a fold, not a merge: which end of an answer wins
// and which answer a regeneration replaces depend on stream order, so the
// rows of a session are streams.Transcript applied to the session's events
// in stream-sequence order, the very rule the API and the analyzer use.
// Each new event is stored in chat_events (keyed by its stream sequence,
// so a redelivery or a replay is recognized and changes nothing) and the
// session is folded again from all its stored events. An event that
// arrives late (a redelivery overtaken by later ones) therefore lands in
// its place: the result depends on the events, not on their arrival.
//
// A deleted session's messages, title and events are deleted, not marked:
// the user asked for the conversation to be gone, and the read model has
// no reason to keep what it may never show (the CHAT stream ages out on
// its own). The session row stays as a tombstone (deleted_at, last_seq),
// so that late, redelivered or replayed events of it store nothing.

// HandleChat applies one CHAT event in its own transaction and returns nil
// only once it is committed; it is a streams.Handler.
func (p *Projector) HandleChat(ctx context.Context, ev *streams.Event) error {
	return p.HandleChatBatch(ctx, []*streams.Event{ev})
}

// HandleChatBatch applies CHAT events in one transaction: all or none.
func (p *Projector) HandleChatBatch(ctx context.Context, evs []*streams.Event) error {
	return p.inTx(ctx, evs, ProjectChat)
}

// ProjectChat applies CHAT events to the chat read model inside tx; the
// caller commits. Sessions are locked in id order, so concurrent batches
// cannot deadlock, and each touched session is folded once.
func ProjectChat(ctx context.Context, tx pgx.Tx, evs []*streams.Event) error {
	bySession := map[string][]*streams.Event{}
	for _, ev := range evs {
		if err := checkChatEvent(ev); err != nil {
			return err
		}
		bySession[ev.Subject] = append(bySession[ev.Subject], ev)
	}
	ids := make([]string, 0, len(bySession))
	for id := range bySession {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if err := projectSession(ctx, tx, id, bySession[id]); err != nil {
			return err
		}
	}
	return nil
}

// checkChatEvent refuses, for good, an event the fold could never apply:
// stored, it would fail every later fold of its session.
func checkChatEvent(ev *streams.Event) error {
	if ev.Subject == "" || ev.Owner == "" || ev.ID == "" || !ev.IsChat() {
		return fmt.Errorf("%w: event %q is no chat event with id, owner and session", errBadEvent, ev.ID)
	}
	if ev.Seq == 0 {
		// Order is the rule: an event without its place in CHAT cannot be folded.
		return fmt.Errorf("%w: chat event %s has no stream sequence", errBadEvent, ev.ID)
	}
	var scratch streams.Transcript // decodes the payload as the fold will
	if err := scratch.Apply(ev); err != nil {
		return fmt.Errorf("%w: %w", errBadEvent, err)
	}
	return nil
}

// projectSession stores one session's new events and folds the session
// again if any was new.
func projectSession(ctx context.Context, tx pgx.Tx, id string, evs []*streams.Event) error {
	owner := evs[0].Owner
	var maxSeq uint64
	for _, ev := range evs {
		if ev.Owner != owner {
			return fmt.Errorf("chat event %s of owner %s in a batch of %s's session %s: %w", ev.ID, ev.Owner, owner, id, errOwnerMismatch)
		}
		maxSeq = max(maxSeq, ev.Seq)
	}
	// Create the row if need be, then lock it: the session's events are
	// folded by one transaction at a time.
	if _, err := tx.Exec(ctx, `INSERT INTO chat_sessions (id, owner, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO NOTHING`, id, owner, occurredAt(evs[0])); err != nil {
		return fmt.Errorf("chat session %s: %w", id, err)
	}
	var rowOwner string
	var deleted bool
	if err := tx.QueryRow(ctx, `SELECT owner, deleted_at IS NOT NULL FROM chat_sessions WHERE id = $1 FOR UPDATE`,
		id).Scan(&rowOwner, &deleted); err != nil {
		return fmt.Errorf("lock chat session %s: %w", id, err)
	}
	if rowOwner != owner {
		return fmt.Errorf("chat events of owner %s for session %s: %w", owner, id, errOwnerMismatch)
	}
	if deleted {
		var deletedAt *time.Time // a later copy of the deleted event may carry an earlier time
		for _, ev := range evs {
			if at := occurredAt(ev); ev.EventKind() == streams.ChatDeleted && (deletedAt == nil || at.Before(*deletedAt)) {
				deletedAt = &at
			}
		}
		return tombstone(ctx, tx, id, deletedAt, maxSeq)
	}

	b := &pgx.Batch{}
	for _, ev := range evs {
		b.Queue(`INSERT INTO chat_events (stream_seq, session_id, owner, event_id, type, data, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (stream_seq) DO NOTHING`,
			int64(ev.Seq), id, owner, ev.ID, string(ev.EventKind()), []byte(ev.Data), occurredAt(ev))
	}
	fresh := 0
	br := tx.SendBatch(ctx, b)
	for _, ev := range evs {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("store chat event %s: %w", ev.ID, err)
		}
		fresh += int(tag.RowsAffected())
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("store chat events of %s: %w", id, err)
	}
	if fresh == 0 {
		return nil // all applied before: a redelivery or a replay
	}
	return foldSession(ctx, tx, id, owner)
}

// folded is a session folded from its stored events.
type folded struct {
	streams.Transcript
	updatedAt time.Time // the newest event's time
	deletedAt time.Time // the earliest deleted event's time
}

// foldSession folds the session's stored events and writes the result.
func foldSession(ctx context.Context, tx pgx.Tx, id, owner string) error {
	f, err := fold(ctx, tx, id, owner)
	if err != nil {
		return err
	}
	if f.Deleted {
		return deleteSession(ctx, tx, id, f)
	}
	if err := writeMessages(ctx, tx, id, owner, f.Messages); err != nil {
		return err
	}
	var createdAt *time.Time
	if f.Exists {
		createdAt = &f.CreatedAt
	}
	_, err = tx.Exec(ctx, `UPDATE chat_sessions SET title = $2, document_id = NULLIF($3, ''), created_by = $4,
		created_at = $5, updated_at = $6, last_seq = $7, message_count = $8 WHERE id = $1`,
		id, f.Created.Title, f.Created.DocumentID, f.Created.CreatedBy, createdAt, f.updatedAt, int64(f.Seq), len(f.Messages))
	if err != nil {
		return fmt.Errorf("update chat session %s: %w", id, err)
	}
	return nil
}

// fold applies the session's stored events in stream order.
func fold(ctx context.Context, tx pgx.Tx, id, owner string) (folded, error) {
	rows, err := tx.Query(ctx, `SELECT stream_seq, event_id, type, data, occurred_at FROM chat_events
		WHERE session_id = $1 ORDER BY stream_seq`, id)
	if err != nil {
		return folded{}, fmt.Errorf("read chat events of %s: %w", id, err)
	}
	f := folded{}
	var seq int64
	var evID, kind string
	var data []byte
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&seq, &evID, &kind, &data, &at}, func() error {
		ev := &streams.Event{ID: evID, Type: streams.ChatCloudEventsType(streams.EventType(kind)), Subject: id,
			Owner: owner, Time: at.UTC(), Data: json.RawMessage(data), Seq: uint64(seq)}
		if err := f.Apply(ev); err != nil {
			return fmt.Errorf("%w: stored %w", errBadEvent, err)
		}
		f.updatedAt = ev.Time
		if ev.EventKind() == streams.ChatDeleted && (f.deletedAt.IsZero() || ev.Time.Before(f.deletedAt)) {
			f.deletedAt = ev.Time
		}
		return nil
	})
	if err != nil {
		return folded{}, fmt.Errorf("fold chat session %s: %w", id, err)
	}
	return f, nil
}

// deleteSession removes what a deleted session held and leaves its
// tombstone.
func deleteSession(ctx context.Context, tx pgx.Tx, id string, f folded) error {
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM chat_messages WHERE session_id = $1`, id)
	b.Queue(`DELETE FROM chat_events WHERE session_id = $1`, id)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("delete chat session %s: %w", id, err)
	}
	return tombstone(ctx, tx, id, &f.deletedAt, f.Seq)
}

// tombstone makes the row of a deleted session the same whatever order its
// events came in: nothing of the conversation, the earliest deletion time,
// the newest sequence. deletedAt nil: no new deletion to record.
func tombstone(ctx context.Context, tx pgx.Tx, id string, deletedAt *time.Time, seq uint64) error {
	_, err := tx.Exec(ctx, `UPDATE chat_sessions SET title = '', document_id = NULL, created_by = '', created_at = NULL,
		message_count = 0, deleted_at = LEAST(deleted_at, $2), updated_at = LEAST(deleted_at, $2),
		last_seq = GREATEST(last_seq, $3) WHERE id = $1`, id, deletedAt, int64(seq))
	if err != nil {
		return fmt.Errorf("tombstone of chat session %s: %w", id, err)
	}
	return nil
}

// writeMessages makes the session's message rows those of msgs, writing
// only what changed: usually the one or two messages an event touched.
// Stored rows are read in position order, so a row's index is its
// position (every write numbers a whole transcript from 0).
func writeMessages(ctx context.Context, tx pgx.Tx, id, owner string, msgs []streams.ChatMessage) error {
	stored, err := store.New(tx).ChatMessages(ctx, owner, id)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	keep := make(map[string]bool, len(msgs))
	for i, m := range msgs {
		keep[m.ID] = true
		if i < len(stored) && sameMessage(stored[i], m) {
			continue
		}
		cites, err := json.Marshal(m.Citations)
		if err != nil {
			return fmt.Errorf("%w: citations of message %s: %w", errBadEvent, m.ID, err)
		}
		b.Queue(upsertMessageSQL, id, m.ID, owner, i, m.Role, m.Status, m.Content, m.QuestionID, m.Model,
			m.InputTokens, m.OutputTokens, m.CostUSD, m.LatencyMS, m.FirstTokenMS, cites, m.Reason, m.ReasonClass, m.CreatedAt)
	}
	var gone []string
	for _, s := range stored {
		if !keep[s.ID] {
			gone = append(gone, s.ID) // a regenerated answer's predecessor
		}
	}
	if len(gone) > 0 {
		b.Queue(`DELETE FROM chat_messages WHERE session_id = $1 AND id = ANY($2)`, id, gone)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write messages of chat session %s: %w", id, err)
	}
	return nil
}

const upsertMessageSQL = `INSERT INTO chat_messages (session_id, id, owner, position, role, status, content,
	question_id, model, input_tokens, output_tokens, cost_usd, latency_ms, first_token_ms, citations,
	reason, reason_class, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (session_id, id) DO UPDATE SET position = excluded.position, role = excluded.role,
	status = excluded.status, content = excluded.content, question_id = excluded.question_id,
	model = excluded.model, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
	cost_usd = excluded.cost_usd, latency_ms = excluded.latency_ms, first_token_ms = excluded.first_token_ms,
	citations = excluded.citations, reason = excluded.reason, reason_class = excluded.reason_class,
	created_at = excluded.created_at`

// sameMessage compares a stored message with a folded one. Times are
// compared as instants: the database keeps microseconds, and so do the
// stored events a fold reads, so the fold has no finer digits.
func sameMessage(a, b streams.ChatMessage) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}
