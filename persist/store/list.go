package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// ErrBadCursor: the cursor was not made by ListDocuments (a client error).
var ErrBadCursor = errors.New("invalid cursor")

// ListQuery filters and pages an owner's documents. Zero values filter
// nothing.
type ListQuery struct {
	Status           string
	RiskLevel        string
	MinScore         *int
	MaxScore         *int
	Since            time.Time // uploaded at or after
	Until            time.Time // uploaded before
	FilenameContains string    // case-insensitive substring
	FilenamePrefix   string    // case-insensitive prefix (index-assisted)
	Limit            int       // DefaultLimit when 0, at most MaxLimit
	Cursor           string    // from the previous page; "" = first page
}

// cursor is the keyset position after which the next page starts. It names
// a position, not an offset, so documents inserted meanwhile neither shift
// nor repeat later pages.
type cursor struct {
	UploadedMicros int64  `json:"t"`
	ID             string `json:"id"`
}

func (c cursor) encode() string {
	raw, _ := json.Marshal(c) // an int and a string: cannot fail
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.ID == "" {
		return cursor{}, ErrBadCursor
	}
	return c, nil
}

// ListDocuments returns one page of the owner's documents, newest upload
// first, and the cursor of the next page ("" on the last page). The order
// is (uploaded_at desc, id desc), a total order, so paging is stable.
func (s *Store) ListDocuments(ctx context.Context, owner string, q ListQuery) ([]Document, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)

	var b queryBuilder
	b.where("owner = "+b.arg(owner), "deleted_at IS NULL")
	if q.Status != "" {
		b.where("status = " + b.arg(q.Status))
	}
	if q.RiskLevel != "" {
		b.where("risk_level = " + b.arg(q.RiskLevel))
	}
	if q.MinScore != nil {
		b.where("score >= " + b.arg(*q.MinScore))
	}
	if q.MaxScore != nil {
		b.where("score <= " + b.arg(*q.MaxScore))
	}
	if !q.Since.IsZero() {
		b.where("uploaded_at >= " + b.arg(q.Since))
	}
	if !q.Until.IsZero() {
		b.where("uploaded_at < " + b.arg(q.Until))
	}
	if q.FilenameContains != "" {
		b.where(`lower(filename) LIKE ` + b.arg("%"+escapeLike(strings.ToLower(q.FilenameContains))+"%"))
	}
	if q.FilenamePrefix != "" {
		b.where(`lower(filename) LIKE ` + b.arg(escapeLike(strings.ToLower(q.FilenamePrefix))+"%"))
	}
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, "", err
		}
		b.where(fmt.Sprintf("(uploaded_at, id) < (%s, %s)", b.arg(time.UnixMicro(c.UploadedMicros)), b.arg(c.ID)))
	}
	// One row more than the page tells whether there is a next page.
	sql := `SELECT ` + documentColumns + ` FROM documents WHERE ` + strings.Join(b.conds, " AND ") +
		` ORDER BY uploaded_at DESC, id DESC LIMIT ` + b.arg(limit+1)

	rows, err := s.db.Query(ctx, sql, b.args...)
	if err != nil {
		return nil, "", fmt.Errorf("list documents: %w", err)
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Document, error) { return scanDocument(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list documents: %w", err)
	}
	if len(docs) <= limit {
		return docs, "", nil
	}
	docs = docs[:limit]
	last := docs[limit-1]
	return docs, cursor{UploadedMicros: last.UploadedAt.UnixMicro(), ID: last.ID}.encode(), nil
}

// queryBuilder collects conditions with positional arguments.
type queryBuilder struct {
	conds []string
	args  []any
}

func (b *queryBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *queryBuilder) where(conds ...string) { b.conds = append(b.conds, conds...) }

// escapeLike makes a user's text match literally in LIKE (backslash is
// PostgreSQL's default LIKE escape).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
