package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
)

// ChatSession is one chat session as the API lists and shows it, from
// the read model persist projects out of the CHAT stream.
type ChatSession struct {
	ID           string    `json:"id"`
	Owner        string    `json:"owner"`
	Title        string    `json:"title"`
	DocumentID   string    `json:"document_id,omitempty"` // "": a free session
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"` // the newest event applied to the session
	MessageCount int       `json:"message_count"`
	CreatedBy    string    `json:"-"` // for Transcript
}

// ChatPage is one page of an owner's sessions.
type ChatPage struct {
	Limit  int    // DefaultLimit when 0, at most MaxLimit
	Cursor string // from the previous page; "" = first page
}

// chatSessionsSort names the one order of session lists inside their
// cursors, so a document list's cursor is refused here and the reverse.
const chatSessionsSort = "chat:-created_at"

// chatOrder is newest session first, on the keyset (created_at, id).
var chatOrder = order{keys: []string{"s.created_at", "s.id"}, desc: true}

// chatSessionColumns are selected in the order scanChatSession reads them.
// (created_at is NULL only in a row that is never returned as a session.)
const chatSessionColumns = `s.id, s.owner, s.title, COALESCE(s.document_id, ''), COALESCE(s.created_at, s.updated_at), s.updated_at,
	s.message_count, s.created_by`

// scanChatSession reads chatSessionColumns, then extra columns into extra.
func scanChatSession(row pgx.Row, extra ...any) (ChatSession, error) {
	var c ChatSession
	err := row.Scan(append([]any{&c.ID, &c.Owner, &c.Title, &c.DocumentID, &c.CreatedAt, &c.UpdatedAt,
		&c.MessageCount, &c.CreatedBy}, extra...)...)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, err
}

// ChatSessions returns one page of the owner's sessions, newest first, and
// the cursor of the next page ("" on the last page). Deleted sessions are
// not listed, nor sessions whose created event is not projected yet. The
// order is on creation, which never changes, so paging is stable: a
// session that is written to between pages keeps its place.
func (s *Store) ChatSessions(ctx context.Context, owner string, page ChatPage) ([]ChatSession, string, error) {
	limit := pageLimit(page.Limit)
	var b queryBuilder
	b.where("s.owner = "+b.arg(owner), "s.deleted_at IS NULL", "s.created_at IS NOT NULL")
	if page.Cursor != "" {
		c, err := decodeCursor(page.Cursor, chatSessionsSort)
		if err != nil {
			return nil, "", err
		}
		b.where(chatOrder.after(&b, c, false))
	}
	sql := `SELECT ` + chatSessionColumns + ` FROM chat_sessions s WHERE ` + b.sql() +
		` ORDER BY ` + chatOrder.by() + ` LIMIT ` + b.arg(limit+1)
	out, next, err := queryPage(ctx, s.db, sql, b.args, limit,
		func(r pgx.Row) (ChatSession, error) { return scanChatSession(r) },
		func(c ChatSession) string {
			return cursor{Sort: chatSessionsSort, UploadedMicros: c.CreatedAt.UnixMicro(), ID: c.ID}.encode()
		})
	if err != nil {
		return nil, "", fmt.Errorf("list chat sessions: %w", err)
	}
	return out, next, nil
}

// ChatSession returns the owner's session, its messages in conversation
// order (each question, then its answer; a regenerated answer in the place
// of the one it replaced) and the CHAT stream sequence of the last event
// applied to them. The read model trails the stream: a reader that must
// see its own writes folds the session's events after that sequence on top
// (ChatTranscript, then streams.Transcript.Apply). Rows and sequence are
// read in one snapshot, so they agree.
//
// ErrNotFound: no such session for this owner (another owner's included),
// or its created event is not projected yet, so the caller may look in the
// stream; ErrDeleted (which matches ErrNotFound): the session was deleted,
// and the stream has nothing to add.
func (s *Store) ChatSession(ctx context.Context, owner, id string) (ChatSession, []streams.ChatMessage, uint64, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT `+chatSessionColumns+`, s.deleted_at IS NOT NULL, s.last_seq FROM chat_sessions s
		WHERE s.owner = $1 AND s.id = $2 AND (s.created_at IS NOT NULL OR s.deleted_at IS NOT NULL)`, owner, id)
	b.Queue(chatMessagesSQL, owner, id)
	br := s.db.SendBatch(ctx, b)
	defer br.Close()

	var deleted bool
	var seq int64
	c, err := scanChatSession(br.QueryRow(), &deleted, &seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return ChatSession{}, nil, 0, ErrNotFound
	case err != nil:
		return ChatSession{}, nil, 0, fmt.Errorf("get chat session %s: %w", id, err)
	case deleted:
		return ChatSession{}, nil, 0, ErrDeleted
	}
	msgs, err := collectChatMessages(br.Query())
	if err != nil {
		return ChatSession{}, nil, 0, fmt.Errorf("messages of chat session %s: %w", id, err)
	}
	return c, msgs, uint64(seq), nil
}

// ChatMessages returns the message rows of the owner's session in
// conversation order, whatever the session's state: the projector's view
// of what it wrote. The API wants ChatSession.
func (s *Store) ChatMessages(ctx context.Context, owner, id string) ([]streams.ChatMessage, error) {
	msgs, err := collectChatMessages(s.db.Query(ctx, chatMessagesSQL, owner, id))
	if err != nil {
		return nil, fmt.Errorf("messages of chat session %s: %w", id, err)
	}
	return msgs, nil
}

const chatMessagesSQL = `SELECT id, role, status, content, created_at, question_id, model, input_tokens,
	output_tokens, cost_usd, latency_ms, first_token_ms, citations, reason, reason_class
	FROM chat_messages WHERE owner = $1 AND session_id = $2 ORDER BY position`

func collectChatMessages(rows pgx.Rows, err error) ([]streams.ChatMessage, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (streams.ChatMessage, error) {
		var m streams.ChatMessage
		err := r.Scan(&m.ID, &m.Role, &m.Status, &m.Content, &m.CreatedAt, &m.QuestionID, &m.Model, &m.InputTokens,
			&m.OutputTokens, &m.CostUSD, &m.LatencyMS, &m.FirstTokenMS, &m.Citations, &m.Reason, &m.ReasonClass)
		m.CreatedAt = m.CreatedAt.UTC()
		return m, err
	})
}

// ChatTranscript is a session read by ChatSession as the fold state it
// stands for, so that the events after seq can be applied on top with
// streams.Transcript.Apply, the rule persist projected the rows by.
func ChatTranscript(c ChatSession, msgs []streams.ChatMessage, seq uint64) streams.Transcript {
	return streams.Transcript{
		Owner:     c.Owner,
		Session:   c.ID,
		Created:   streams.ChatCreatedData{Title: c.Title, DocumentID: c.DocumentID, CreatedBy: c.CreatedBy},
		CreatedAt: c.CreatedAt,
		Exists:    true,
		Messages:  msgs,
		Seq:       seq,
	}
}
