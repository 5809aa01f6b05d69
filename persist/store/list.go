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
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
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
	// One row more than the page tells whether there is a next page.
	sql := `SELECT ` + documentColumns + ` FROM documents d WHERE ` + b.sql() +
		` ORDER BY ` + ord.by() + ` LIMIT ` + b.arg(limit+1)

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
	return docs, cursorAfter(sort, docs[limit-1]), nil
}
