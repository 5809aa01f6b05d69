package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Audit entry types. The API writes them into document_events, the
// document's history, with ids of its own (<document>:audit:...) that can
// never collide with a pipeline event id (<document>:<run>:<type>). They
// carry no status, so they never move a document's status.
const (
	AuditViewed     = "audit.viewed"     // the document, its assessment or its text was read
	AuditDownloaded = "audit.downloaded" // the original was downloaded
	AuditExported   = "audit.exported"   // the assessment was part of a bulk export
	AuditDeleted    = "audit.deleted"    // the document was deleted
)

// Actor says who did something and through which request.
type Actor struct {
	User      string // the authenticated user (today always the owner)
	RequestID string // becomes the entry's correlation id
	Source    string // CloudEvents-style source, e.g. /prism/api
}

// auditDetail is the detail of an audit entry.
func auditDetail(a Actor, extra map[string]any) []byte {
	m := map[string]any{"actor": a.User}
	for k, v := range extra {
		m[k] = v
	}
	raw, err := json.Marshal(m)
	if err != nil { // strings and numbers only: cannot fail
		return []byte(`{}`)
	}
	return raw
}

// auditInsert inserts one audit entry per row of a SELECT yielding the
// columns (event_id, document_id, owner, run).
const auditInsert = `INSERT INTO document_events (event_id, document_id, owner, run, type, source, correlation_id, detail, occurred_at)`

// RecordAccess writes an audit entry of type typ for the owner's
// document. Reads are coalesced per user, document, type and minute, so a
// client polling a document adds one entry a minute, not one per request.
// A missing or deleted document records nothing.
func (s *Store) RecordAccess(ctx context.Context, owner, id, typ string, a Actor, at time.Time, extra map[string]any) error {
	eventID := AccessEntryID(id, typ, a.User, at)
	_, err := s.db.Exec(ctx, auditInsert+`
		SELECT $1, d.id, d.owner, d.run, $2, $3, $4, $5, $6
		FROM documents d WHERE d.owner = $7 AND d.id = $8 AND d.deleted_at IS NULL
		ON CONFLICT (event_id) DO NOTHING`,
		eventID, typ, a.Source, a.RequestID, auditDetail(a, extra), at, owner, id)
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", typ, id, err)
	}
	return nil
}

// AccessEntryID is the id of the audit entry of a read: one per document,
// kind of access, user and minute, so a client polling a document adds one
// row a minute, not one per request.
func AccessEntryID(id, typ, user string, at time.Time) string {
	return id + ":audit:" + typ[len("audit."):] + ":" + user + ":" + strconv.FormatInt(at.Unix()/60, 10)
}

// Deletion is the outcome of Delete.
type Deletion struct {
	// Keys are the storage keys of every object the document's events
	// named (originals, extracted texts of every run).
	Keys []string
	// Already: the document was deleted before this call.
	Already bool
}

// Delete soft-deletes the owner's document and records an audit.deleted
// entry, in one statement. It is idempotent: a document deleted before is
// answered with Already and the same keys, so a retry can finish removing
// objects an earlier attempt left behind. ErrNotFound: the owner has no
// such document.
func (s *Store) Delete(ctx context.Context, owner, id string, a Actor, at time.Time) (Deletion, error) {
	var existed, deleted bool
	err := s.db.QueryRow(ctx, `WITH doc AS (
			SELECT id, owner, run, deleted_at FROM documents WHERE owner = $1 AND id = $2 FOR UPDATE
		), del AS (
			UPDATE documents d SET deleted_at = $3 FROM doc
			WHERE d.id = doc.id AND doc.deleted_at IS NULL
			RETURNING d.id, d.owner, d.run
		), audit AS (`+auditInsert+`
			SELECT del.id || ':audit:deleted', del.id, del.owner, del.run, $4, $5, $6, $7, $3 FROM del
			ON CONFLICT (event_id) DO NOTHING
		)
		SELECT EXISTS (SELECT 1 FROM doc), EXISTS (SELECT 1 FROM del)`,
		owner, id, at, AuditDeleted, a.Source, a.RequestID, auditDetail(a, nil)).Scan(&existed, &deleted)
	if err != nil {
		return Deletion{}, fmt.Errorf("delete %s: %w", id, err)
	}
	if !existed {
		return Deletion{}, ErrNotFound
	}
	keys, err := s.objectKeys(ctx, owner, id)
	if err != nil {
		return Deletion{}, err
	}
	return Deletion{Keys: keys, Already: !deleted}, nil
}

// objectKeys collects the storage keys a document's events and row name.
// The history knows every run's text, the row only the latest.
func (s *Store) objectKeys(ctx context.Context, owner, id string) ([]string, error) {
	rows, err := s.db.Query(ctx, `SELECT DISTINCT k FROM (
			SELECT original_key AS k FROM documents WHERE owner = $1 AND id = $2
			UNION ALL SELECT text_key FROM documents WHERE owner = $1 AND id = $2
			UNION ALL SELECT detail->'original'->>'key' FROM document_events
				WHERE owner = $1 AND document_id = $2 AND type = 'uploaded'
			UNION ALL SELECT detail->'text'->>'key' FROM document_events
				WHERE owner = $1 AND document_id = $2 AND type = 'extracted'
		) keys WHERE k IS NOT NULL AND k <> '' ORDER BY k`, owner, id)
	if err != nil {
		return nil, fmt.Errorf("object keys of %s: %w", id, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("object keys of %s: %w", id, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("object keys of %s: %w", id, err)
	}
	return keys, nil
}
