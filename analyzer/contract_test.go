package analyzer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
)

// The analyzer keeps the promises every stage makes; its effect is
// document.analyzed. It is built as Run builds it: the default chain on
// the Bedrock simulator, the result cache, and the stream to see work
// already done. The model answers after 100 ms, as a network and a model
// take their time, so that the suite's cancellations cut model calls.
func TestStageContract(t *testing.T) {
	streamstest.Run(t, func(t *testing.T) *streamstest.Stage {
		ctx := context.Background()
		f := newFixture(t, analyzer.StageConfig{})
		slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			select {
			case <-time.After(100 * time.Millisecond):
				f.sim.ServeHTTP(w, req)
			case <-req.Context().Done():
			}
		}))
		t.Cleanup(slow.Close)
		client, err := bedrock.NewClient(ctx, bedrock.Config{Region: "us-east-1", Endpoint: slow.URL, AccessKeyID: "AKTEST", SecretAccessKey: "secret", Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r, err := router.New(router.DefaultChain(), f.shared, client, router.Options{MaxWait: 100 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cache, err := analyzer.OpenCache(ctx, f.js, "results")
		if err != nil {
			t.Fatal(err)
		}
		stage := analyzer.NewStage(f.store, r, cache, f.pub, analyzer.StageConfig{MaxOutputTokens: 2048, ChunkBytes: 400_000, MaxChars: 2_000_000}, f.js)
		return &streamstest.Stage{
			JS:        f.js,
			Consumer:  streams.AnalyzerConsumer,
			Handler:   stage.Handle,
			Publisher: f.pub,
			Input: func(t *testing.T, doc string) {
				if err := f.pub.Publish(ctx, f.extracted(t, doc, riskyContract+"\nReference: "+doc+"\n")); err != nil {
					t.Fatal(err)
				}
			},
			Effects:  func(t *testing.T, doc string) int { return streamstest.CountEvents(t, f.js, doc, streams.Analyzed) },
			Bad:      func(t *testing.T, doc string) { streamstest.PublishBadPayload(t, f.js, doc, streams.Extracted) },
			BadClass: streams.ClassBadEvent,
			Break:    func(t *testing.T) func() { return streamstest.RefuseDocs(t, f.js) },
		}
	})
}
