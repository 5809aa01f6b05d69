package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Export is a bulk export stored in the object store.
type Export struct {
	ID        string          `json:"id"`
	Owner     string          `json:"-"`
	Format    string          `json:"format"`
	Key       string          `json:"key"`
	Filters   json.RawMessage `json:"filters"`
	Rows      int64           `json:"rows"`
	SizeBytes int64           `json:"size_bytes"`
	SHA256    string          `json:"sha256"`
	CreatedAt time.Time       `json:"created_at"`
}

// RecordExport remembers a stored export so its owner can download it by id.
func (s *Store) RecordExport(ctx context.Context, e Export) error {
	filters := e.Filters
	if len(filters) == 0 {
		filters = json.RawMessage(`{}`)
	}
	_, err := s.db.Exec(ctx, `INSERT INTO exports (id, owner, format, object_key, filters, rows, size_bytes, sha256, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ID, e.Owner, e.Format, e.Key, []byte(filters), e.Rows, e.SizeBytes, e.SHA256, e.CreatedAt)
	if err != nil {
		return fmt.Errorf("record export %s: %w", e.ID, err)
	}
	return nil
}

// GetExport returns the owner's export; ErrNotFound for another owner's.
func (s *Store) GetExport(ctx context.Context, owner, id string) (Export, error) {
	e := Export{Owner: owner}
	err := s.db.QueryRow(ctx, `SELECT id, format, object_key, filters, rows, size_bytes, sha256, created_at
		FROM exports WHERE owner = $1 AND id = $2`, owner, id).Scan(
		&e.ID, &e.Format, &e.Key, &e.Filters, &e.Rows, &e.SizeBytes, &e.SHA256, &e.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Export{}, ErrNotFound
	}
	if err != nil {
		return Export{}, fmt.Errorf("get export %s: %w", id, err)
	}
	return e, nil
}
