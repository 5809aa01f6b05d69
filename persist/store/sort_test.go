package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aiprism/prism/persist/store"
)

// Score orders page through ties (equal scores, equal upload times) and
// unscored documents without losing or repeating one, and a cursor only
// continues the order it was made for.
func TestScoreOrderPagesThroughTiesAndUnscored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 12 {
		id := fmt.Sprintf("d%02d", i)
		f.upload("alice", id, id+".txt")
		if i%3 != 0 { // every third stays unscored
			f.analyze("alice", id, 10*(i%4), "low")
		}
	}
	if _, err := f.pool.Exec(ctx, `UPDATE documents SET uploaded_at = '2025-05-01T12:00:00Z' WHERE id IN ('d01', 'd02', 'd05')`); err != nil {
		t.Fatal(err)
	}
	for _, sort := range store.Sorts {
		all, next, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Sort: sort, Limit: 200})
		if err != nil || next != "" || len(all) != 12 {
			t.Fatalf("%s: %d documents, next %q, %v", sort, len(all), next, err)
		}
		var paged []string
		cursor := ""
		for {
			docs, next, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Sort: sort, Limit: 5, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			paged = append(paged, ids(docs)...)
			if next == "" {
				break
			}
			cursor = next
			other := otherSort(sort)
			if _, _, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Sort: other, Cursor: cursor}); !errors.Is(err, store.ErrBadCursor) {
				t.Fatalf("a %s cursor continued %s: %v", sort, other, err)
			}
		}
		if fmt.Sprint(paged) != fmt.Sprint(ids(all)) {
			t.Fatalf("%s: paged %v, whole %v", sort, paged, ids(all))
		}
		if sort == store.SortScoreDesc {
			last := all[len(all)-1]
			if last.Score != nil || all[0].Score == nil || *all[0].Score != 30 {
				t.Fatalf("-score: first %v, last %v: unscored documents go last", all[0].Score, last.Score)
			}
		}
	}
	if _, _, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Sort: "name"}); !errors.Is(err, store.ErrBadSort) {
		t.Fatalf("unknown sort: %v", err)
	}
}

func otherSort(s string) string {
	if s == store.SortNewest {
		return store.SortScoreAsc
	}
	return store.SortNewest
}

func TestDeleteAuditAndState(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.upload("alice", "d1", "a.txt")
	f.analyze("alice", "d1", 40, "medium")
	actor := store.Actor{User: "alice", RequestID: "req1", Source: "/test"}
	at := time.Date(2025, 6, 1, 10, 0, 30, 0, time.UTC)

	// Reads within one minute coalesce; another owner's document records nothing.
	for range 3 {
		if err := f.s.RecordAccess(ctx, "alice", "d1", store.AuditViewed, actor, at, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.RecordAccess(ctx, "bob", "d1", store.AuditViewed, actor, at, nil); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f, `SELECT count(*) FROM document_events WHERE type = 'audit.viewed'`); n != 1 {
		t.Fatalf("%d audit.viewed rows", n)
	}

	if _, err := f.s.Delete(ctx, "bob", "d1", actor, at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob deletes alice's document: %v", err)
	}
	del, err := f.s.Delete(ctx, "alice", "d1", actor, at)
	if err != nil || del.Already || fmt.Sprint(del.Keys) != "[originals/d1 texts/d1]" {
		t.Fatalf("delete: %+v %v", del, err)
	}
	again, err := f.s.Delete(ctx, "alice", "d1", actor, at.Add(time.Minute))
	if err != nil || !again.Already || len(again.Keys) != 2 {
		t.Fatalf("delete again: %+v %v", again, err)
	}
	if _, err := f.s.GetDocument(ctx, "alice", "d1"); !errors.Is(err, store.ErrDeleted) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDocument of a deleted document: %v", err)
	}
	if st, err := f.s.DocumentState(ctx, "alice", "d1"); err != nil || !st.Deleted || st.Status != "analyzed" {
		t.Fatalf("state %+v %v", st, err)
	}
	if n := countRows(t, f, `SELECT count(*) FROM document_events WHERE type = 'audit.deleted'`); n != 1 {
		t.Fatalf("%d audit.deleted rows", n)
	}
	// Deleted documents record no further reads.
	if err := f.s.RecordAccess(ctx, "alice", "d1", store.AuditViewed, actor, at.Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, f, `SELECT count(*) FROM document_events WHERE type = 'audit.viewed'`); n != 1 {
		t.Fatalf("%d audit.viewed rows after delete", n)
	}
}

func countRows(t *testing.T, f *fixture, sql string) int {
	t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
