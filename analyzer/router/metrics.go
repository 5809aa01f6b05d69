package router

import (
	"time"

	"github.com/aiprism/prism/platform/obs"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus series, per model.
type Metrics struct {
	invocations *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	tokensIn    *prometheus.CounterVec
	tokensOut   *prometheus.CounterVec
	costUSD     *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
	refusals    *prometheus.CounterVec
	busyCount   *prometheus.CounterVec
}

// NewMetrics registers the router's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		invocations: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_model_invocations_total", Help: "Bedrock calls by model and outcome (ok, throttled, not_ready, error, rejected; for streams also interrupted, stopped).",
		}, []string{"model", "outcome"})),
		latency: obs.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prism_model_latency_seconds", Help: "Bedrock call latency by model.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}, []string{"model"})),
		tokensIn: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_model_input_tokens_total", Help: "Input tokens by model.",
		}, []string{"model"})),
		tokensOut: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_model_output_tokens_total", Help: "Output tokens by model.",
		}, []string{"model"})),
		costUSD: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_model_cost_usd_total", Help: "Estimated cost in USD by model.",
		}, []string{"model"})),
		fallbacks: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_model_fallbacks_total", Help: "Requests served by a model other than the primary, or after a failed attempt, by serving model.",
		}, []string{"model"})),
		refusals: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_model_capacity_refusals_total", Help: "Times a model had no capacity, by reason (cooling, open, requests, tokens, yielding).",
		}, []string{"model", "reason"})),
		busyCount: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_router_all_busy_total", Help: "Requests sent back to wait because every model was busy, by priority.",
		}, []string{"priority"})),
	}
}

func (m *Metrics) call(model, outcome string, latency time.Duration) {
	if m == nil {
		return
	}
	m.invocations.WithLabelValues(model, outcome).Inc()
	m.latency.WithLabelValues(model).Observe(latency.Seconds())
}

func (m *Metrics) tokens(model string, in, out int, cost float64) {
	if m == nil {
		return
	}
	m.tokensIn.WithLabelValues(model).Add(float64(in))
	m.tokensOut.WithLabelValues(model).Add(float64(out))
	m.costUSD.WithLabelValues(model).Add(cost)
}

func (m *Metrics) fallback(model string) {
	if m != nil {
		m.fallbacks.WithLabelValues(model).Inc()
	}
}

func (m *Metrics) refused(model, reason string) {
	if m != nil {
		m.refusals.WithLabelValues(model, reason).Inc()
	}
}

func (m *Metrics) busy(interactive bool) {
	if m == nil {
		return
	}
	p := "batch"
	if interactive {
		p = "interactive"
	}
	m.busyCount.WithLabelValues(p).Inc()
}
