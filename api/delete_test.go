package api_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/streams"
)

func TestDeleteIsSoftIdempotentAuditedAndFinal(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "gone.txt", "to be deleted", 30, "medium")
	keep := e.analyzed(alice, "kept.txt", "stays", 30, "medium")
	ctx := context.Background()
	var keys []string
	if err := e.pool.QueryRow(ctx, `SELECT ARRAY[original_key, text_key] FROM documents WHERE id = $1`, d.id).Scan(&keys); err != nil {
		t.Fatal(err)
	}

	expect(t, e.do(http.MethodDelete, "/api/v1/documents/"+d.id, alice, nil), http.StatusNoContent)

	for _, path := range []string{"", "/assessment", "/history", "/text", "/original", "/events"} {
		e.get("/api/v1/documents/"+d.id+path, alice).problem(t, http.StatusNotFound, "not-found")
	}
	if names := e.listAll(alice, ""); len(names) != 1 || names[0] != "kept.txt" {
		t.Fatalf("listing after delete: %v %s", names, e.get("/api/v1/documents", alice).body)
	}
	for _, key := range keys {
		if _, err := e.blobs.Head(ctx, key); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("object %s still stored (%v)", key, err)
		}
	}
	if _, err := e.blobs.Head(ctx, keep.textKey(t)); err != nil {
		t.Fatalf("another document's text was removed: %v", err)
	}
	var deletedAt *time.Time
	var status string
	if err := e.pool.QueryRow(ctx, `SELECT deleted_at, status FROM documents WHERE id = $1`, d.id).Scan(&deletedAt, &status); err != nil || deletedAt == nil || status != "analyzed" {
		t.Fatalf("row after delete: deleted_at %v status %s (%v)", deletedAt, status, err)
	}

	// Again: 204, and no second audit entry.
	expect(t, e.do(http.MethodDelete, "/api/v1/documents/"+d.id, alice, nil), http.StatusNoContent)
	if types := e.historyTypes(d.id); count(types, "audit.deleted") != 1 {
		t.Fatalf("history %v: want one audit.deleted", types)
	}

	// A late event of the document (a re-analysis still under way) is
	// projected but does not bring the document back.
	d.run = 2
	d.waitSeq(d.emit(streams.Progress, streams.ProgressData{Stage: streams.StageAnalyze, Status: "analyzing"}).Seq)
	e.get("/api/v1/documents/"+d.id, alice).problem(t, http.StatusNotFound, "not-found")
	if names := e.listAll(alice, ""); len(names) != 1 {
		t.Fatalf("a late event resurrected the document: %v", names)
	}
	e.do(http.MethodPost, "/api/v1/documents/"+d.id+"/reanalyze", alice, nil).problem(t, http.StatusNotFound, "not-found")
}

func (d *doc) textKey(t *testing.T) string {
	var key string
	if err := d.e.pool.QueryRow(context.Background(), `SELECT text_key FROM documents WHERE id = $1`, d.id).Scan(&key); err != nil {
		t.Fatal(err)
	}
	return key
}
