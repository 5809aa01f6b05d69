package router

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StateCollector reports the shared limiter state at scrape time: what is
// left in each model's window, its adaptive scale, and whether it is
// cooling or its breaker is open. Read fresh from the shared bucket, so
// every replica reports the same, cluster-wide truth.
type StateCollector struct {
	shared *Shared
	chain  Chain
	reqs   *prometheus.Desc
	toks   *prometheus.Desc
	scale  *prometheus.Desc
	cool   *prometheus.Desc
	open   *prometheus.Desc
}

// NewStateCollector returns a collector over chain's models.
func NewStateCollector(shared *Shared, chain Chain) *StateCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"model"}, nil)
	}
	return &StateCollector{
		shared: shared, chain: chain,
		reqs:  d("prism_model_window_requests_available", "Requests still available in the model's 61 s quota window."),
		toks:  d("prism_model_window_tokens_available", "Quota tokens still available in the model's 61 s window."),
		scale: d("prism_model_limit_scale", "Adaptive share of the configured limits in use (1 = as configured)."),
		cool:  d("prism_model_cooldown_seconds", "Seconds until the model's cooldown ends (0 = not cooling)."),
		open:  d("prism_model_breaker_open", "1 while the model's circuit breaker is open."),
	}
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.reqs, c.toks, c.scale, c.cool, c.open} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, m := range c.chain {
		s, err := c.shared.Snapshot(ctx, m)
		if err != nil {
			continue
		}
		open := 0.0
		if s.BreakerOpen {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(c.reqs, prometheus.GaugeValue, float64(s.Requests), m.ID)
		ch <- prometheus.MustNewConstMetric(c.toks, prometheus.GaugeValue, float64(s.Tokens), m.ID)
		ch <- prometheus.MustNewConstMetric(c.scale, prometheus.GaugeValue, s.Scale, m.ID)
		ch <- prometheus.MustNewConstMetric(c.cool, prometheus.GaugeValue, s.CoolingFor.Seconds(), m.ID)
		ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, open, m.ID)
	}
}
