package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/persist/persisttest"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture seeds the read model through the projector, as production does.
type fixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	p    *persist.Projector
	s    *store.Store
	at   time.Time
	seq  uint64 // the stream sequence of the last chat event
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := persisttest.DB(t)
	return &fixture{t: t, pool: pool, p: persist.New(pool, zerolog.Nop()), s: store.New(pool),
		at: time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fixture) emit(owner, doc string, typ streams.EventType, key string, data any) {
	f.t.Helper()
	ev, err := streams.NewEvent("/test", streams.Meta{Owner: owner, DocumentID: doc, Run: 1}, typ, key, data)
	if err != nil {
		f.t.Fatal(err)
	}
	f.at = f.at.Add(time.Second)
	ev.Time = f.at
	if err := f.p.Handle(context.Background(), ev); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) upload(owner, doc, filename string) {
	f.emit(owner, doc, streams.Uploaded, "", streams.UploadedData{
		Original: streams.ObjectRef{Key: "originals/" + doc, Size: 100, SHA256: "ab"}, Filename: filename,
	})
}

func (f *fixture) analyze(owner, doc string, score int, level string) {
	f.emit(owner, doc, streams.Extracted, "", streams.ExtractedData{Text: streams.ObjectRef{Key: "texts/" + doc}, Format: "txt", Words: 10, Chars: 60})
	f.emit(owner, doc, streams.Analyzed, "", streams.AnalyzedData{
		Assessment: json.RawMessage(`{"summary":"s"}`), Score: score, Level: level, Model: "m1", PromptVersion: "v1",
		Attempts: []streams.Attempt{{Model: "m1", Outcome: "ok"}}, CostUSD: 0.0125,
	})
}

func TestGetDocumentWithTimelineAndAssessment(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.upload("alice", "d1", "contract.pdf")
	f.emit("alice", "d1", streams.Progress, "extract", streams.ProgressData{Stage: streams.StageExtract, Status: "extracting"})
	f.analyze("alice", "d1", 64, "high")

	d, err := f.s.GetDocument(ctx, "alice", "d1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != "analyzed" || d.Filename != "contract.pdf" || *d.Score != 64 || d.RiskLevel != "high" || *d.Words != 10 || d.TextKey != "texts/d1" {
		t.Fatalf("document = %+v", d)
	}
	var types []string
	for _, e := range d.Timeline {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[uploaded progress extracted analyzed]" {
		t.Fatalf("timeline = %v", types)
	}
	if d.Assessment == nil || d.Assessment.Score != 64 || d.Assessment.CostUSD != 0.0125 || string(d.Assessment.Result) != `{"summary": "s"}` {
		t.Fatalf("assessment = %+v", d.Assessment)
	}
	raw, _ := json.Marshal(d)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if _, leaked := m["TextKey"]; leaked || m["risk_level"] != "high" || m["uploaded_at"] == nil {
		t.Fatalf("JSON shape: %s", raw)
	}
}

func TestAnotherOwnersDocumentIsNotFound(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.upload("alice", "d1", "a.txt")
	f.analyze("alice", "d1", 10, "low")

	if _, err := f.s.GetDocument(ctx, "bob", "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetDocument by bob: %v", err)
	}
	if _, err := f.s.GetAssessment(ctx, "bob", "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetAssessment by bob: %v", err)
	}
	if docs, _, err := f.s.ListDocuments(ctx, "bob", store.ListQuery{}); err != nil || len(docs) != 0 {
		t.Fatalf("bob lists %d documents (%v)", len(docs), err)
	}
	if _, err := f.s.GetDocument(ctx, "alice", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing document: %v", err)
	}
	f.upload("alice", "d2", "b.txt")
	if _, err := f.s.GetAssessment(ctx, "alice", "d2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("assessment of an unanalyzed document: %v", err)
	}
	if _, err := f.pool.Exec(ctx, "UPDATE documents SET deleted_at = now() WHERE id = 'd1'"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.GetDocument(ctx, "alice", "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted document: %v", err)
	}
}

// ids lists the ids of documents or chat sessions, in order.
func ids[T store.Document | store.ChatSession](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		switch v := any(x).(type) {
		case store.Document:
			out[i] = v.ID
		case store.ChatSession:
			out[i] = v.ID
		}
	}
	return out
}

func TestListFilters(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.upload("alice", "low", "Lease 2024.pdf")
	f.analyze("alice", "low", 12, "low")
	mid := f.at
	f.upload("alice", "high", "NDA_final.docx")
	f.analyze("alice", "high", 81, "high")
	f.upload("alice", "pending", "100% draft.txt")
	f.upload("bob", "other", "NDA.docx")
	f.analyze("bob", "other", 90, "critical")

	score := func(n int) *int { return &n }
	for _, tc := range []struct {
		name string
		q    store.ListQuery
		want string
	}{
		{"all, newest first", store.ListQuery{}, "[pending high low]"},
		{"status", store.ListQuery{Status: "analyzed"}, "[high low]"},
		{"risk level", store.ListQuery{RiskLevel: "high"}, "[high]"},
		{"min score", store.ListQuery{MinScore: score(50)}, "[high]"},
		{"max score", store.ListQuery{MaxScore: score(50)}, "[low]"},
		{"since", store.ListQuery{Since: mid}, "[pending high]"},
		{"until", store.ListQuery{Until: mid}, "[low]"},
		{"filename contains, any case", store.ListQuery{FilenameContains: "nda"}, "[high]"},
		{"filename wildcard is literal", store.ListQuery{FilenameContains: "100%"}, "[pending]"},
		{"underscore is literal", store.ListQuery{FilenameContains: "a_f"}, "[high]"},
		{"filename prefix", store.ListQuery{FilenamePrefix: "lease"}, "[low]"},
	} {
		docs, next, err := f.s.ListDocuments(ctx, "alice", tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := fmt.Sprint(ids(docs)); got != tc.want || next != "" {
			t.Errorf("%s: got %s (next %q), want %s", tc.name, got, next, tc.want)
		}
	}
	if _, _, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Cursor: "not-a-cursor"}); !errors.Is(err, store.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestPagesAreStableWhileDocumentsArrive(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var original []string
	for i := range 23 {
		id := fmt.Sprintf("doc%02d", i)
		f.upload("alice", id, id+".txt")
		original = append(original, id)
	}
	// Same upload time: the id breaks the tie, so none is lost between pages.
	if _, err := f.pool.Exec(ctx, "UPDATE documents SET uploaded_at = '2025-05-01T12:00:05Z' WHERE id IN ('doc05', 'doc06', 'doc07', 'doc08')"); err != nil {
		t.Fatal(err)
	}

	seen := map[string]int{}
	var order []string
	cursor, pages := "", 0
	for {
		docs, next, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Limit: 5, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range docs {
			seen[d.ID]++
			order = append(order, d.ID)
		}
		// New documents arrive between page requests.
		f.upload("alice", fmt.Sprintf("new%02d", pages), "new.txt")
		if next == "" {
			break
		}
		cursor = next
	}
	if pages != 5 {
		t.Errorf("%d pages, want 5", pages)
	}
	for _, id := range original {
		if seen[id] != 1 {
			t.Errorf("%s seen %d times", id, seen[id])
		}
	}
	if len(order) != len(original) {
		t.Fatalf("listed %v, want exactly the %d original documents", order, len(original))
	}
	// doc04..doc08 share one upload time, so (uploaded_at desc, id desc)
	// is here simply id desc.
	for i := 1; i < len(order); i++ {
		if order[i-1] <= order[i] {
			t.Fatalf("order broken at %d: %v", i, order)
		}
	}
}
