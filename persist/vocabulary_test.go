package persist_test

import (
	"context"
	"regexp"
	"slices"
	"testing"

	"github.com/aiprism/prism/streams"
)

// The documents table accepts exactly the statuses streams defines: a
// status added there without a migration fails here, not in production.
func TestDocumentsTableAcceptsExactlyTheStatuses(t *testing.T) {
	pool := newDB(t)
	var def string
	if err := pool.QueryRow(context.Background(), `SELECT pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = 'documents'::regclass AND conname = 'documents_status_check'`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	var accepted []string
	for _, m := range regexp.MustCompile(`'([^']+)'::text`).FindAllStringSubmatch(def, -1) {
		accepted = append(accepted, m[1])
	}
	want := streams.Statuses()
	slices.Sort(accepted)
	slices.Sort(want)
	if !slices.Equal(accepted, want) {
		t.Fatalf("documents.status accepts %v (%s); streams defines %v", accepted, def, want)
	}
}
