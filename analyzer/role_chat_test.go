package analyzer_test

import (
	"context"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/quota"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// The analyzer role answers chats beside analyzing documents, each
// consumer with its own concurrency from the configuration; when one
// consumer stops (its durable deleted on the server), the whole role
// stops with the reason instead of running half an analyzer.
func TestRoleAnswersChatsBesideDocumentsAndStopsWhole(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	store := testenv.S3(t)
	sim, err := bedrocksim.New(bedrocksim.Config{Speed: 0, AccessKey: "AKTEST", SecretKey: "secret", Seed: 1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	l := config.New(config.MapEnv(map[string]string{
		"BEDROCK_ENDPOINT_URL": hs.URL, "AWS_ACCESS_KEY_ID": "AKTEST", "AWS_SECRET_ACCESS_KEY": "secret",
		"ANALYZER_CONCURRENCY": "2", "ANALYZER_CHAT_CONCURRENCY": "3",
	}))
	cfg := analyzer.ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := jsbind.CreateKeyValues(ctx, js, analyzer.BucketConfigs(cfg, 1)...); err != nil {
		t.Fatal(err)
	}
	if err := jsbind.CreateStreams(ctx, js, quota.UsageStreamConfig(1)); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Logs{}
	role := analyzer.NewRole(cfg, analyzer.Deps{JS: js, Objects: store, Registry: prometheus.NewRegistry(),
		Log: zerolog.New(io.MultiWriter(logs, zerolog.NewTestWriter(t)))})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- role.Run(runCtx) }()

	pub := streams.NewPublisher(js, "/test")
	put, err := store.Put(ctx, blob.TextKey("alice", "doc-1", "run-1"), strings.NewReader(riskyContract), int64(len(riskyContract)), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Emit(ctx, streams.Meta{Owner: "alice", DocumentID: "doc-1", Run: 1}, streams.Extracted, "",
		streams.ExtractedData{Text: streams.ObjectRef{Key: put.Key, Size: put.Size, SHA256: put.SHA256}, Format: "txt"}); err != nil {
		t.Fatal(err)
	}
	chat := streams.ChatMeta{Owner: "alice", Session: "s-1"}
	for _, e := range []struct {
		t    streams.EventType
		key  string
		data any
	}{
		{streams.ChatCreated, "", streams.ChatCreatedData{Title: "t", DocumentID: "doc-1", CreatedBy: "alice"}},
		{streams.ChatAsked, "a-1", streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "Why is the liability clause a risk?", DocumentID: "doc-1"}},
	} {
		ev, err := streams.NewChatEvent("/test", chat, e.t, e.key, e.data)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	docs, chats := streams.NewLog(js), streams.NewChatLog(js)
	testenv.Eventually(t, 15*time.Second, "the document analyzed and the question answered", func() bool {
		an, err1 := docs.Last(ctx, streams.DocSubject("alice", "doc-1", streams.Analyzed))
		ans, err2 := chats.Last(ctx, streams.ChatSubject("alice", "s-1", streams.ChatAnswered))
		return err1 == nil && err2 == nil && an != nil && ans != nil
	})
	if !logs.Has(`"consumer":"chat"`, `"concurrency":3`, "consumer started") || !logs.Has(`"consumer":"analyzer"`, `"concurrency":2`, "consumer started") {
		t.Fatalf("consumers not started with their own concurrency:\n%s", logs)
	}

	if err := js.DeleteConsumer(ctx, streams.ChatStream, streams.ChatConsumer.Name); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "chat") {
			t.Fatalf("the role ended with %v, want the chat consumer's stop", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the analyzer role still runs without its chat consumer")
	}
}
