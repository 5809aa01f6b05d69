package analyzer_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
)

// Owner-scoped (the default), alice's answer for a text does not serve
// bob's document with the same text: bob's document calls the model, and
// its assessment is not marked cached. Shared, it does.
func TestResultCacheIsPerOwnerUnlessShared(t *testing.T) {
	for _, tc := range []struct {
		scope      string
		bobCached  bool
		bobCallsUp bool
	}{
		{"", false, true},
		{analyzer.CacheScopeOwner, false, true},
		{analyzer.CacheScopeShared, true, false},
	} {
		t.Run("scope="+tc.scope, func(t *testing.T) {
			f := newFixture(t, analyzer.StageConfig{CacheScope: tc.scope})
			ctx := context.Background()
			if err := f.stage.Handle(ctx, f.extractedOf(t, "alice", "doc-a", riskyContract)); err != nil {
				t.Fatal(err)
			}
			calls := f.requests()
			if err := f.stage.Handle(ctx, f.extractedOf(t, "bob", "doc-b", riskyContract)); err != nil {
				t.Fatal(err)
			}
			bob, _ := f.analyzedOf(t, "bob", "doc-b", riskyContract)
			if up := f.requests() > calls; up != tc.bobCallsUp || bob.Cached != tc.bobCached {
				t.Fatalf("bob's document: model called %v, cached %v; want called %v, cached %v", up, bob.Cached, tc.bobCallsUp, tc.bobCached)
			}
			// Alice's own second document with the text is never paid twice.
			calls = f.requests()
			if err := f.stage.Handle(ctx, f.extractedOf(t, "alice", "doc-a2", riskyContract)); err != nil {
				t.Fatal(err)
			}
			if again, _ := f.analyzedOf(t, "alice", "doc-a2", riskyContract); f.requests() != calls || !again.Cached {
				t.Fatalf("alice's re-upload called the model %d times (cached %v)", f.requests()-calls, again.Cached)
			}
		})
	}
}

// An extracted event published under mallory's owner pointing at alice's
// text ends in document.failed of class foreign-object: the analyzer
// neither reads alice's text nor sends anything to a model.
func TestForgedExtractedEventReadsNothingOfAnotherOwner(t *testing.T) {
	f := newFixture(t, analyzer.StageConfig{})
	streamstest.Running(t, f.js, streams.AnalyzerConsumer, f.stage.Handle, f.pub, &testenv.Logs{})
	alices := f.extractedOf(t, "alice", "doc-a", riskyContract)
	var text streams.ExtractedData
	if err := alices.Decode(&text); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pub.Emit(context.Background(), streams.Meta{Owner: "mallory", DocumentID: "doc-m", Run: 1}, streams.Extracted, "", text); err != nil {
		t.Fatal(err)
	}
	failed := streamstest.WaitFailed(t, f.js, "mallory", "doc-m")
	if failed.ReasonClass != streams.ClassForeignObject || failed.Stage != streams.StageAnalyze || failed.Reason != streams.ClassReason(streams.ClassForeignObject) {
		t.Fatalf("failed event %+v, want class %s", failed, streams.ClassForeignObject)
	}
	if n := f.s3.Count(http.MethodGet, text.Text.Key); n != 0 {
		t.Fatalf("alice's text was read %d times for mallory's event", n)
	}
	if n := f.requests(); n != 0 {
		t.Fatalf("%d model calls for mallory's event", n)
	}
}

// Bedrock rejects the request with words of its own (the simulator does
// not know the model): the document fails as model-rejected, users are
// told our sentence, and Bedrock's words are in the log with the document
// and correlation ids.
func TestBedrockErrorTextReachesTheLogNotTheUser(t *testing.T) {
	f := newFixture(t, analyzer.StageConfig{})
	unknown := router.DefaultChain()[0]
	unknown.ID = "anthropic.claude-unheard-of-v9:0"
	r, err := router.New(router.Chain{unknown}, f.shared, f.client, router.Options{MaxWait: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stage := analyzer.NewStage(f.store, r, nil, f.pub, analyzer.StageConfig{MaxOutputTokens: 2048, ChunkBytes: 400_000, MaxChars: 1 << 20}, f.js)
	logs := &testenv.Logs{}
	streamstest.Running(t, f.js, streams.AnalyzerConsumer, stage.Handle, f.pub, logs)
	if err := f.pub.Publish(context.Background(), f.extractedOf(t, "alice", "doc-x", riskyContract)); err != nil {
		t.Fatal(err)
	}
	const raw = "The provided model identifier is invalid."
	failed := streamstest.WaitFailed(t, f.js, "alice", "doc-x")
	if failed.ReasonClass != streams.ClassModelRejected || strings.Contains(failed.Reason, raw) ||
		strings.Contains(failed.Reason, "ResourceNotFound") || strings.Contains(failed.Reason, unknown.ID) {
		t.Fatalf("failed event %+v: want model-rejected told in our words, without Bedrock's", failed)
	}
	testenv.Eventually(t, 5*time.Second, "Bedrock's error in the log", func() bool {
		return logs.Has(raw, `"document_id":"doc-x"`, `"correlation_id":"corr-doc-x"`)
	})
}
