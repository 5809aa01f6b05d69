package notifier_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/notifier"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

type delivery struct {
	id, ts, sig string
	body        []byte
}

func TestWebhookDeliveredSignedAndRetriedOn5xx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, _, js := testenv.NATS(t)
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var got []delivery
	calls := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // the receiver is down once
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = append(got, delivery{r.Header.Get("Webhook-Id"), r.Header.Get("Webhook-Timestamp"), r.Header.Get("Webhook-Signature"), b})
	}))
	defer hook.Close()

	secret := "0123456789abcdef-secret"
	cfg := notifier.ConfigFromEnv(config.New(config.MapEnv(map[string]string{
		"NOTIFIER_WEBHOOK_URL": hook.URL, "NOTIFIER_WEBHOOK_SECRET": secret,
	})))
	c := streams.NotifierConsumer
	n := notifier.New(cfg, prometheus.NewRegistry())
	go func() {
		_ = streams.Run(ctx, js, c, n.Handle, streams.RunnerOptions{
			Log: zerolog.New(zerolog.NewTestWriter(t)), Backoff: func(uint64) time.Duration { return 20 * time.Millisecond },
		})
	}()

	pub := streams.NewPublisher(js, "/test")
	m := streams.Meta{Owner: "alice", DocumentID: "doc1", Run: 1, CorrelationID: "c1"}
	// Only terminal events are delivered; progress is not.
	if _, err := pub.Emit(ctx, m, streams.Progress, "x", streams.ProgressData{Stage: streams.StageExtract}); err != nil {
		t.Fatal(err)
	}
	ev, err := pub.Emit(ctx, m, streams.Analyzed, "", streams.AnalyzedData{Score: 42, Level: "medium"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook not delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d := got[0]
	if d.id != ev.ID {
		t.Fatalf("Webhook-Id = %q, want %q", d.id, ev.ID)
	}
	if want := "v1," + notifier.Sign([]byte(secret), d.id, d.ts, d.body); d.sig != want {
		t.Fatalf("signature %q does not verify (want %q)", d.sig, want)
	}
	if calls != 2 {
		t.Fatalf("receiver called %d times, want 2 (one 503, one success)", calls)
	}
}

func TestConfigRequiresSecretWithURL(t *testing.T) {
	l := config.New(config.MapEnv(map[string]string{"NOTIFIER_WEBHOOK_URL": "https://example.test/hook"}))
	notifier.ConfigFromEnv(l)
	if l.Err() == nil {
		t.Fatal("a webhook URL without a secret was accepted")
	}
}
