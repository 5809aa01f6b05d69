package analyzer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
)

// budgetStage is the fixture's stage on the default chain, held to a
// daily budget of limit tokens per owner in the limits bucket, with the
// result cache given (nil: none).
func (f *fixture) budgetStage(t *testing.T, limit int64, cache *analyzer.Cache) (*analyzer.Stage, *quota.Budget) {
	t.Helper()
	limits, err := quota.Open(context.Background(), f.js, quota.Config{})
	if err != nil {
		t.Fatal(err)
	}
	budget := limits.Budget(limit)
	r, err := router.New(router.DefaultChain(), f.shared, f.client, router.Options{MaxWait: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := analyzer.StageConfig{MaxOutputTokens: 2048, ChunkBytes: 400_000, MaxChars: 1 << 20}
	return analyzer.NewStage(f.store, r, cache, f.pub, cfg, f.js, analyzer.WithBudget(budget)), budget
}

// waitAnalyzed waits for the analyzed event of owner's document.
func (f *fixture) waitAnalyzed(t *testing.T, owner, doc string) streams.AnalyzedData {
	t.Helper()
	var d streams.AnalyzedData
	log := streams.NewLog(f.js)
	testenv.Eventually(t, 10*time.Second, "document.analyzed of "+owner+"/"+doc, func() bool {
		ev, err := log.Last(context.Background(), streams.DocSubject(owner, doc, streams.Analyzed))
		return err == nil && ev != nil && ev.Decode(&d) == nil
	})
	return d
}

// One document spends alice's daily budget (the input and output tokens
// of its model call, counted in the limits bucket): her next document
// fails as budget-spent, told in our words, without a model call; bob's
// is analyzed. A redelivery of her analyzed document counts nothing more.
func TestSpentBudgetFailsTheNextDocumentWithoutAModelCall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, analyzer.StageConfig{})
	stage, budget := f.budgetStage(t, 100, nil)
	streamstest.Running(t, f.js, streams.AnalyzerConsumer, stage.Handle, f.pub, &testenv.Logs{})

	first := f.extractedOf(t, "alice", "doc-1", riskyContract)
	if err := f.pub.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	d := f.waitAnalyzed(t, "alice", "doc-1")
	spent := int64(d.InputTokens + d.OutputTokens)
	if used, err := budget.Used(ctx, "alice"); err != nil || used != spent || spent < 100 {
		t.Fatalf("alice used %d (%v), want the %d tokens of her document (over the budget of 100)", used, err, spent)
	}

	calls := f.requests()
	if err := f.pub.Publish(ctx, f.extractedOf(t, "alice", "doc-2", riskyContract+"\nA second contract.\n")); err != nil {
		t.Fatal(err)
	}
	failed := streamstest.WaitFailed(t, f.js, "alice", "doc-2")
	if failed.ReasonClass != streams.ClassBudgetSpent || failed.Stage != streams.StageAnalyze ||
		!strings.Contains(failed.Reason, "budget") || !strings.Contains(failed.Reason, "midnight UTC") {
		t.Fatalf("failed event %+v, want class %s saying when the budget renews", failed, streams.ClassBudgetSpent)
	}
	if n := f.requests() - calls; n != 0 {
		t.Fatalf("%d model calls for a document of an owner whose budget is spent", n)
	}

	if err := f.pub.Publish(ctx, f.extractedOf(t, "bob", "doc-3", riskyContract)); err != nil {
		t.Fatal(err)
	}
	f.waitAnalyzed(t, "bob", "doc-3")
	if f.requests() == calls {
		t.Fatal("bob's document was not analyzed by a model")
	}

	// The first document's event again, as JetStream redelivers it.
	if err := stage.Handle(streams.WithDelivery(ctx, 2), first); err != nil {
		t.Fatal(err)
	}
	if used, err := budget.Used(ctx, "alice"); err != nil || used != spent {
		t.Fatalf("after a redelivery alice used %d (%v), want %d", used, err, spent)
	}
}

// A delivery is counted once however often its count is made: handled
// twice (no cache, no look at the log, so the model is called twice),
// its tokens are counted once. Another delivery counts what it spends.
func TestADeliveryIsCountedOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, analyzer.StageConfig{})
	limits, err := quota.Open(ctx, f.js, quota.Config{})
	if err != nil {
		t.Fatal(err)
	}
	budget := limits.Budget(1_000_000)
	r, err := router.New(router.DefaultChain(), f.shared, f.client, router.Options{MaxWait: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stage := analyzer.NewStage(f.store, r, nil, f.pub, analyzer.StageConfig{MaxOutputTokens: 2048, ChunkBytes: 400_000, MaxChars: 1 << 20}, nil,
		analyzer.WithBudget(budget))
	ev := f.extractedOf(t, "alice", "doc-1", riskyContract)
	for range 2 {
		if err := stage.Handle(streams.WithDelivery(ctx, 1), ev); err != nil {
			t.Fatal(err)
		}
	}
	if f.requests() != 2 {
		t.Fatalf("%d model calls, want 2 (one per handling)", f.requests())
	}
	d, _ := f.analyzedOf(t, "alice", "doc-1", riskyContract)
	once := int64(d.InputTokens + d.OutputTokens)
	if used, err := budget.Used(ctx, "alice"); err != nil || used != once {
		t.Fatalf("used %d (%v), want %d: one delivery counted once", used, err, once)
	}
	if err := stage.Handle(streams.WithDelivery(ctx, 2), ev); err != nil {
		t.Fatal(err)
	}
	if used, err := budget.Used(ctx, "alice"); err != nil || used <= once {
		t.Fatalf("used %d (%v), want more than %d: a redelivery that called the model again counts its call", used, err, once)
	}
}
