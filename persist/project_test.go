package persist_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

func projector(t *testing.T) (*persist.Projector, *pgxpool.Pool) {
	pool := newDB(t)
	return persist.New(pool, zerolog.New(zerolog.NewTestWriter(t))), pool
}

// reset empties the read model: reusing a database is cheaper than a new one.
func reset(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), "TRUNCATE documents, document_events, assessments CASCADE"); err != nil {
		t.Fatal(err)
	}
}

func handleAll(t *testing.T, p *persist.Projector, evs []*streams.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := p.Handle(context.Background(), ev); err != nil {
			t.Fatalf("handle %s: %v", ev.ID, err)
		}
	}
}

// shuffledTwice returns every event twice in a random order.
func shuffledTwice(evs []*streams.Event, rng *rand.Rand) []*streams.Event {
	out := append(append([]*streams.Event{}, evs...), evs...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestOrderAndDuplicatesDoNotChangeTheResult(t *testing.T) {
	evs := pipeline(t)
	p, pool := projector(t)
	handleAll(t, p, evs)
	want := snap(t, pool)

	// Sanity of the in-order result, so equal results are also right ones.
	var docs []map[string]any
	if err := json.Unmarshal([]byte(want.Documents), &docs); err != nil || len(docs) != 3 {
		t.Fatalf("documents = %s (%v)", want.Documents, err)
	}
	var events []any
	_ = json.Unmarshal([]byte(want.Events), &events)
	if len(events) != len(evs) {
		t.Fatalf("history has %d entries, want one per event (%d)", len(events), len(evs))
	}

	for seed := range uint64(3) {
		reset(t, pool)
		rng := rand.New(rand.NewPCG(seed, 42))
		shuffled := shuffledTwice(evs, rng)
		// Half one by one, half in batches that may hold both copies.
		for len(shuffled) > 0 {
			n := min(1+rng.IntN(5), len(shuffled))
			if rng.IntN(2) == 0 {
				n = 1
			}
			if err := p.HandleBatch(context.Background(), shuffled[:n]); err != nil {
				t.Fatal(err)
			}
			shuffled = shuffled[n:]
		}
		if g := snap(t, pool); g != want {
			t.Fatalf("seed %d: shuffled, duplicated delivery differs from in-order\n got: %+v\nwant: %+v", seed, g, want)
		}
	}
}

func TestConcurrentHandlersConverge(t *testing.T) {
	evs := pipeline(t)
	p, pool := projector(t)
	handleAll(t, p, evs)
	want := snap(t, pool)

	reset(t, pool)
	work := make(chan *streams.Event)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ev := range work {
				// Deadlock or serialization errors are transient; the
				// runner would redeliver, so retry here too.
				var err error
				for range 5 {
					if err = p.Handle(context.Background(), ev); err == nil {
						break
					}
				}
				if err != nil {
					t.Errorf("handle %s: %v", ev.ID, err)
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 3 {
		for _, ev := range shuffledTwice(evs, rng) {
			work <- ev
		}
	}
	close(work)
	wg.Wait()
	if g := snap(t, pool); g != want {
		t.Fatalf("concurrent delivery differs from in-order\n got: %+v\nwant: %+v", g, want)
	}
}

func TestStatusIsMonotonicAndFactsMerge(t *testing.T) {
	pool := newDB(t)
	p := persist.New(pool, zerolog.Nop())
	h := newHistory(t)
	m := meta("alice", "doc1", 1)
	up := h.uploaded(m, "nda.docx")
	ext := h.extracted(m)
	an := h.analyzing(m)
	done := h.analyzed(m, 55, "medium")

	// analyzed first: the row exists with what the event knows.
	handleAll(t, p, []*streams.Event{done})
	if r := doc(t, pool, "doc1"); r.Status != "analyzed" || r.Rank != 100 || *r.Score != 55 || r.Filename != nil || r.Words != nil {
		t.Fatalf("after analyzed: %+v", r)
	}
	// Older statuses arrive late: they fill facts, never move status back.
	handleAll(t, p, []*streams.Event{ext, an, up})
	r := doc(t, pool, "doc1")
	if r.Status != "analyzed" || *r.Score != 55 || *r.RiskLevel != "medium" || r.CompletedAt == nil {
		t.Fatalf("late events moved the outcome: %+v", r)
	}
	if r.Filename == nil || *r.Filename != "nda.docx" || r.Words == nil || *r.Words != 1530 || r.TextKey == nil {
		t.Fatalf("late events' facts not merged: %+v", r)
	}
	if n := count(t, pool, "SELECT count(*) FROM assessments WHERE document_id = 'doc1'"); n != 1 {
		t.Fatalf("%d assessments", n)
	}
	var uploadedAt, upTime string
	_ = pool.QueryRow(context.Background(), "SELECT uploaded_at::text, $1::timestamptz::text FROM documents", up.Time).Scan(&uploadedAt, &upTime)
	if uploadedAt != upTime {
		t.Fatalf("uploaded_at = %s, want the upload's time %s", uploadedAt, upTime)
	}
}

// TestWaitingAndAnalyzingFollowTheNewerEvent: a document that waits for
// model capacity says queued, and analyzing again once it gets capacity,
// whatever order the projector sees those events in.
func TestWaitingAndAnalyzingFollowTheNewerEvent(t *testing.T) {
	pool := newDB(t)
	p := persist.New(pool, zerolog.Nop())
	h := newHistory(t)
	m := meta("alice", "doc1", 1)
	up, ext := h.uploaded(m, "nda.docx"), h.extracted(m)
	first := h.analyzing(m)
	wait := h.add(m, streams.Progress, "queued", streams.ProgressData{Stage: streams.StageAnalyze, Step: "queued", Status: "queued"})
	again := h.add(m, streams.Progress, "analyze-started-2", streams.ProgressData{Stage: streams.StageAnalyze, Step: "started", Status: "analyzing"})

	handleAll(t, p, []*streams.Event{up, ext, first, wait})
	if r := doc(t, pool, "doc1"); r.Status != "queued" {
		t.Fatalf("waiting document shows %s", r.Status)
	}
	handleAll(t, p, []*streams.Event{again})
	if r := doc(t, pool, "doc1"); r.Status != "analyzing" {
		t.Fatalf("document analyzed again after its wait shows %s", r.Status)
	}
	// The same events in the opposite order end the same way.
	p2pool := newDB(t)
	p2 := persist.New(p2pool, zerolog.Nop())
	handleAll(t, p2, []*streams.Event{again, wait, first, ext, up, wait})
	if r := doc(t, p2pool, "doc1"); r.Status != "analyzing" {
		t.Fatalf("reversed order ends at %s", r.Status)
	}
	// The outcome still ends it.
	handleAll(t, p2, []*streams.Event{h.analyzed(m, 40, "medium"), wait})
	if r := doc(t, p2pool, "doc1"); r.Status != "analyzed" {
		t.Fatalf("after the outcome: %s", r.Status)
	}
}

func (h *history) analyzing(m streams.Meta) *streams.Event {
	return h.progress(m, streams.StageAnalyze, "started", "analyzing")
}

func TestReanalysisMovesForwardAndLateRunOneEventsDoNot(t *testing.T) {
	pool := newDB(t)
	p := persist.New(pool, zerolog.Nop())
	h := newHistory(t)
	r1, r2 := meta("alice", "doc1", 1), meta("alice", "doc1", 2)
	up := h.uploaded(r1, "policy.pdf")
	ext := h.extracted(r1)
	an1 := h.analyzing(r1)
	fail1 := h.failed(r1, streams.StageAnalyze, "model-error", "the model returned invalid JSON twice")
	handleAll(t, p, []*streams.Event{up, ext, an1, fail1})
	if r := doc(t, pool, "doc1"); r.Status != "failed" || r.Run != 1 || r.FailureClass == nil || *r.FailureClass != "model-error" || r.CompletedAt == nil {
		t.Fatalf("run 1: %+v", r)
	}

	an2 := h.analyzing(r2)
	handleAll(t, p, []*streams.Event{an2})
	r := doc(t, pool, "doc1")
	if r.Status != "analyzing" || r.Run != 2 || r.FailureClass != nil || r.CompletedAt != nil || *r.CorrelationID != r2.CorrelationID {
		t.Fatalf("run 2 did not move forward and clear run 1's outcome: %+v", r)
	}

	// Late and duplicated run-1 events: run 2 stays where it is.
	late := h.add(r1, streams.Progress, "analyze-queued", streams.ProgressData{Stage: streams.StageAnalyze, Status: "queued"})
	handleAll(t, p, []*streams.Event{fail1, late, ext, up})
	if r := doc(t, pool, "doc1"); r.Status != "analyzing" || r.Run != 2 || r.FailureClass != nil {
		t.Fatalf("late run-1 events moved run 2: %+v", r)
	}

	done2 := h.analyzed(r2, 91, "critical")
	handleAll(t, p, []*streams.Event{done2, done2})
	r = doc(t, pool, "doc1")
	if r.Status != "analyzed" || r.Run != 2 || *r.Score != 91 || *r.RiskLevel != "critical" || r.Words == nil {
		t.Fatalf("run 2 result: %+v", r)
	}
	if n := count(t, pool, "SELECT count(*) FROM assessments WHERE document_id = 'doc1' AND run = 2"); n != 1 {
		t.Fatalf("%d run-2 assessments", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM document_events WHERE document_id = 'doc1'"); n != 7 {
		t.Fatalf("history has %d entries, want 7", n)
	}
}

func TestUnprojectableEventsArePermanent(t *testing.T) {
	pool := newDB(t)
	p := persist.New(pool, zerolog.Nop())
	h := newHistory(t)

	bad := h.extracted(meta("alice", "doc1", 1))
	bad.Data = json.RawMessage(`{"words":"many"}`)
	assertPermanent(t, p.Handle(context.Background(), bad), "bad-event")

	// A document id already owned by alice, claimed by mallory.
	handleAll(t, p, []*streams.Event{h.uploaded(meta("alice", "doc2", 1), "a.txt")})
	forged := h.extracted(meta("mallory", "doc2", 1))
	assertPermanent(t, p.Handle(context.Background(), forged), "owner-mismatch")
	if r := doc(t, pool, "doc2"); r.Status != "uploaded" || r.Words != nil {
		t.Fatalf("forged event changed the document: %+v", r)
	}
	if n := count(t, pool, "SELECT count(*) FROM document_events WHERE owner = 'mallory'"); n != 0 {
		t.Fatalf("forged event recorded in the history")
	}

	// A NUL byte is valid JSON but not PostgreSQL text: no retry helps.
	nul := h.uploaded(meta("alice", "doc3", 1), "a\x00b.txt")
	assertPermanent(t, p.Handle(context.Background(), nul), "db-rejected")
}

func assertPermanent(t *testing.T, err error, class string) {
	t.Helper()
	var pe *streams.PermanentError
	if !errors.As(err, &pe) || pe.Class != class {
		t.Fatalf("err = %v, want permanent %s", err, class)
	}
}

func TestUnknownEventTypesOnlyEnterTheHistory(t *testing.T) {
	pool := newDB(t)
	p := persist.New(pool, zerolog.Nop())
	h := newHistory(t)
	ev := h.add(meta("alice", "doc1", 1), streams.EventType("annotated"), "", map[string]string{"by": "reviewer"})
	handleAll(t, p, []*streams.Event{ev})
	if n := count(t, pool, "SELECT count(*) FROM document_events"); n != 1 {
		t.Fatalf("history: %d", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM documents"); n != 0 {
		t.Fatalf("unknown event created a document")
	}
}
