// Package notifier tells the outside world what happened to documents: it
// consumes document.analyzed and document.failed and delivers each as a
// CloudEvent to the configured webhook, signed the Standard Webhooks way
// (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256>)
// so receivers can verify it and drop duplicates by id.
package notifier

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is the notifier role's configuration.
type Config struct {
	WebhookURL  string // empty = no delivery (events are still consumed)
	Secret      []byte // HMAC key; required with a URL
	Timeout     time.Duration
	Concurrency int
}

// ConfigFromEnv reads NOTIFIER_WEBHOOK_URL, NOTIFIER_WEBHOOK_SECRET,
// NOTIFIER_TIMEOUT and NOTIFIER_CONCURRENCY.
func ConfigFromEnv(l *config.Loader) Config {
	c := Config{
		WebhookURL:  l.URL("NOTIFIER_WEBHOOK_URL", "", "http", "https"),
		Secret:      []byte(l.String("NOTIFIER_WEBHOOK_SECRET", "")),
		Timeout:     l.Duration("NOTIFIER_TIMEOUT", 10*time.Second, 100*time.Millisecond, time.Minute),
		Concurrency: l.Int("NOTIFIER_CONCURRENCY", 8, 1, 256),
	}
	l.Check(c.WebhookURL == "" || len(c.Secret) >= 16, "NOTIFIER_WEBHOOK_SECRET", "at least 16 characters when NOTIFIER_WEBHOOK_URL is set")
	return c
}

// Notifier delivers events to a webhook.
type Notifier struct {
	cfg       Config
	client    *http.Client
	delivered *prometheus.CounterVec
	now       func() time.Time
}

// New returns a Notifier.
func New(cfg Config, reg prometheus.Registerer) *Notifier {
	return &Notifier{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout},
		delivered: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_webhook_deliveries_total",
			Help: "Webhook deliveries by outcome (ok, retry, rejected, skipped).",
		}, []string{"outcome"})),
		now: time.Now,
	}
}

// Handle delivers one event. A 2xx is success; 5xx, 429 and network errors
// are retried by the runner with backoff; other 4xx mean the receiver will
// never take it, so it is dropped (counted and logged).
func (n *Notifier) Handle(ctx context.Context, ev *streams.Event) error {
	log := zerolog.Ctx(ctx)
	if n.cfg.WebhookURL == "" {
		n.delivered.WithLabelValues("skipped").Inc()
		return nil
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return streams.Permanent(streams.ClassBadEvent, err)
	}
	ts := strconv.FormatInt(n.now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return streams.Permanent(streams.ClassBadWebhook, err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Webhook-Id", ev.ID)
	req.Header.Set("Webhook-Timestamp", ts)
	req.Header.Set("Webhook-Signature", "v1,"+Sign(n.cfg.Secret, ev.ID, ts, body))
	resp, err := n.client.Do(req)
	if err != nil {
		n.delivered.WithLabelValues("retry").Inc()
		return fmt.Errorf("deliver %s: %w", ev.ID, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		n.delivered.WithLabelValues("ok").Inc()
		log.Debug().Int("status", resp.StatusCode).Msg("webhook delivered")
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		n.delivered.WithLabelValues("retry").Inc()
		return fmt.Errorf("deliver %s: receiver answered %d", ev.ID, resp.StatusCode)
	default:
		n.delivered.WithLabelValues("rejected").Inc()
		log.Warn().Int("status", resp.StatusCode).Msg("webhook rejected by receiver; dropped")
		return nil
	}
}

// Sign computes the Standard Webhooks signature of a delivery.
func Sign(secret []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Deps are what the notifier role works with, opened by its caller.
type Deps struct {
	JS       jetstream.JetStream
	Registry prometheus.Registerer
	Log      zerolog.Logger
}

// Role is the notifier role: configured, wired, and started by Run.
type Role struct {
	cfg Config
	d   Deps
}

// NewRole returns the notifier role; it starts nothing until Run.
func NewRole(cfg Config, d Deps) *Role { return &Role{cfg: cfg, d: d} }

// Run consumes terminal document events until ctx ends.
func (r *Role) Run(ctx context.Context) error {
	n := New(r.cfg, r.d.Registry)
	return streams.Run(ctx, r.d.JS, streams.NotifierConsumer, n.Handle, streams.RunnerOptions{
		Concurrency: r.cfg.Concurrency,
		Log:         r.d.Log,
		Metrics:     streams.NewRunnerMetrics(r.d.Registry),
	})
}
