package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
)

// Documents in flight are the owner's live documents not yet analyzed or
// failed, plus the just-submitted runs the projector has not seen: a new
// document without a row, a re-analysis whose row is still at the run
// before.
func TestInFlight(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.upload("alice", "uploaded", "a.pdf")
	f.upload("alice", "done", "b.pdf")
	f.analyze("alice", "done", 10, "low")
	f.upload("alice", "failed", "c.pdf")
	f.emit("alice", "failed", streams.Failed, "", streams.FailedData{Stage: streams.StageExtract, ReasonClass: "empty", Reason: "empty"})
	f.upload("alice", "deleted", "d.pdf")
	if _, err := f.s.Delete(ctx, "alice", "deleted", store.Actor{User: "alice"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	f.upload("bob", "bobs", "e.pdf")

	n, unseen, err := f.s.InFlight(ctx, "alice", nil, nil)
	if err != nil || n != 1 || len(unseen) != 0 {
		t.Fatalf("in flight %d, unseen %v (%v); want 1: the uploaded one", n, unseen, err)
	}
	// Recent: a new document, a re-analysis of "done" (run 2), the
	// projected "uploaded", and bob's document under alice's name.
	n, unseen, err = f.s.InFlight(ctx, "alice", []string{"new", "done", "uploaded", "bobs"}, []int{1, 2, 1, 1})
	if err != nil || n != 4 || !slices.Equal(unseen, []int{0, 1, 3}) {
		t.Fatalf("in flight %d, unseen %v (%v); want 4 with new, done and bobs unseen", n, unseen, err)
	}
}
