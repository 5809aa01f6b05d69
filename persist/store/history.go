package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// HistoryEntry is one row of a document's history: a pipeline event or an
// audit entry (type audit.*) written by the API.
type HistoryEntry struct {
	EventID       string          `json:"event_id"`
	Seq           int64           `json:"seq,omitempty"` // DOCS stream sequence; 0 for audit entries
	Run           int             `json:"run"`
	Type          string          `json:"type"`
	Stage         string          `json:"stage,omitempty"`
	Status        string          `json:"status,omitempty"`
	Source        string          `json:"source,omitempty"`
	CorrelationID string          `json:"correlation_id,omitempty"`
	Detail        json.RawMessage `json:"detail,omitempty"`
	OccurredAt    time.Time       `json:"occurred_at"`
}

// historyColumns are a HistoryEntry's columns, as scanHistoryEntry reads
// them. Storage keys are cut from the payloads, as from every JSON the
// store serves.
const historyColumns = `event_id, stream_seq, run, type, COALESCE(stage, ''), COALESCE(status, ''),
	COALESCE(source, ''), COALESCE(correlation_id, ''), detail #- '{original,key}' #- '{text,key}', occurred_at`

func scanHistoryEntry(r pgx.CollectableRow) (HistoryEntry, error) {
	var e HistoryEntry
	err := r.Scan(&e.EventID, &e.Seq, &e.Run, &e.Type, &e.Stage, &e.Status, &e.Source, &e.CorrelationID, &e.Detail, &e.OccurredAt)
	return e, err
}

type historyCursor struct {
	AtMicros int64  `json:"t"`
	EventID  string `json:"e"`
}

// History returns one page of the owner's document's history, oldest
// first, and the cursor of the next page ("" on the last one). A deleted
// or unknown document is ErrNotFound.
func (s *Store) History(ctx context.Context, owner, id string, limit int, after string) ([]HistoryEntry, string, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	st, err := s.DocumentState(ctx, owner, id)
	if err != nil {
		return nil, "", err
	}
	if st.Deleted {
		return nil, "", ErrDeleted
	}

	var b queryBuilder
	b.where("owner = "+b.arg(owner), "document_id = "+b.arg(id))
	if after != "" {
		var c historyCursor
		raw, err := base64.RawURLEncoding.DecodeString(after)
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || c.EventID == "" {
			return nil, "", ErrBadCursor
		}
		b.where(fmt.Sprintf("(occurred_at, event_id) > (%s, %s)", b.arg(time.UnixMicro(c.AtMicros).UTC()), b.arg(c.EventID)))
	}
	rows, err := s.db.Query(ctx, `SELECT `+historyColumns+`
		FROM document_events WHERE `+b.sql()+` ORDER BY occurred_at, event_id LIMIT `+b.arg(limit+1), b.args...)
	if err != nil {
		return nil, "", fmt.Errorf("history of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, scanHistoryEntry)
	if err != nil {
		return nil, "", fmt.Errorf("history of %s: %w", id, err)
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	last := out[limit-1]
	raw, _ := json.Marshal(historyCursor{AtMicros: last.OccurredAt.UnixMicro(), EventID: last.EventID})
	return out, base64.RawURLEncoding.EncodeToString(raw), nil
}
