package analyzer_test

import (
	"context"
	"github.com/aiprism/prism/platform/jsbind"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/platform/testenv"
)

// Answers are kept per (scope, text, prompt version, model); a lookup finds
// the newest of any model for the scope, text and prompt version, and
// nothing for another scope (owner, or shared), text or prompt version.
func TestCacheKeysByTextPromptAndModel(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	if err := jsbind.CreateKeyValues(ctx, js, analyzer.CacheBucketConfig("cache_keys", 1, time.Hour)); err != nil {
		t.Fatal(err)
	}
	c, err := analyzer.OpenCache(ctx, js, "cache_keys")
	if err != nil {
		t.Fatal(err)
	}
	type answer struct{ Model string }
	sha := analyzer.TextSHA256("the text")
	for _, m := range []string{"anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"} {
		if err := c.Put(ctx, "doc", "alice", sha, "risk-v1", m, answer{m}); err != nil {
			t.Fatal(err)
		}
	}
	var got answer
	if ok, err := c.Get(ctx, "doc", "alice", sha, "risk-v1", &got); err != nil || !ok || got.Model != "us.anthropic.claude-sonnet-4-5-20250929-v1:0" {
		t.Fatalf("lookup: %v %v %+v, want the newest answer", ok, err, got)
	}
	kv, err := js.KeyValue(ctx, "cache_keys")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != 2 {
		t.Fatalf("%d entries, want one per model", n)
	}
	for _, miss := range []struct{ kind, scope, sha, version string }{
		{"doc", "alice", analyzer.TextSHA256("another text"), "risk-v1"},
		{"doc", "alice", sha, "risk-v2"},
		{"chunk", "alice", sha, "risk-v1"},
		{"doc", "bob", sha, "risk-v1"},
		{"doc", "", sha, "risk-v1"},
	} {
		if ok, err := c.Get(ctx, miss.kind, miss.scope, miss.sha, miss.version, &got); err != nil || ok {
			t.Fatalf("lookup of %+v: %v %v, want a miss", miss, ok, err)
		}
	}
	// A shared answer is found in the shared scope only.
	if err := c.Put(ctx, "doc", "", sha, "risk-v1", "m", answer{"shared"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Get(ctx, "doc", "", sha, "risk-v1", &got); err != nil || !ok || got.Model != "shared" {
		t.Fatalf("shared lookup: %v %v %+v", ok, err, got)
	}
	if ok, err := c.Get(ctx, "doc", "bob", sha, "risk-v1", &got); err != nil || ok {
		t.Fatalf("bob's lookup found a shared answer: %v %v", ok, err)
	}
}
