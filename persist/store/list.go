package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ListDocuments returns one page of the owner's documents in q.Sort order
// (newest upload first by default) and the cursor of the next page (""
// on the last page). Every order is total, so paging is stable: documents
// that arrive meanwhile neither shift nor repeat later pages. A document
// whose sort key changes between pages (its score during a re-analysis)
// may move, as in any keyset pagination over live data.
func (s *Store) ListDocuments(ctx context.Context, owner string, q ListQuery) ([]Document, string, error) {
	limit := pageLimit(q.Limit)
	ord, err := orderOf(q.Sort)
	if err != nil {
		return nil, "", err
	}
	sort := q.Sort
	if sort == "" {
		sort = SortNewest
	}

	var b queryBuilder
	q.filter(&b, owner)
	if q.Cursor != "" {
		c, err := decodeCursor(q.Cursor, sort)
		if err != nil {
			return nil, "", err
		}
		b.where(ord.after(&b, c, byScore(sort)))
	}
	sql := `SELECT ` + documentColumns + ` FROM documents d WHERE ` + b.sql() +
		` ORDER BY ` + ord.by() + ` LIMIT ` + b.arg(limit+1)
	docs, next, err := queryPage(ctx, s.db, sql, b.args, limit, scanDocument,
		func(d Document) string { return cursorAfter(sort, d) })
	if err != nil {
		return nil, "", fmt.Errorf("list documents: %w", err)
	}
	return docs, next, nil
}

// queryPage runs a list query that asks for limit+1 rows (one more than
// the page tells whether there is a next page) and returns the page and
// the cursor after its last row ("" on the last page).
func queryPage[T any](ctx context.Context, db DB, sql string, args []any, limit int,
	scan func(pgx.Row) (T, error), after func(T) string) ([]T, string, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, "", err
	}
	if len(out) <= limit {
		return out, "", nil
	}
	out = out[:limit]
	return out, after(out[limit-1]), nil
}
