package router_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// A model that answers ModelNotReadyException is cooled and routed around
// (through the real client against the simulator), the attempt trail
// says so in our words (it is shown to users) while Bedrock's go to the
// log, and the router's metrics tell the same story when scraped.
func TestNotReadyFallsBackAndMetricsTellIt(t *testing.T) {
	w, r, _, reg := twoModels(t, bedrocksim.Faults{NotReady: 1})
	logs := &testenv.Logs{}

	res, err := r.Converse(zerolog.New(logs).WithContext(context.Background()), chatRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	if res.Model.ID != "model-b" || len(res.Attempts) != 2 {
		t.Fatalf("served by %s after %+v, want model-b on the second attempt", res.Model.ID, res.Attempts)
	}
	if a := res.Attempts[0]; a.Model != "model-a" || a.Outcome != "not_ready" || a.Error != "the model was not ready" {
		t.Fatalf("first attempt %+v, want model-a not_ready, told in our words", a)
	}
	if !strings.Contains(logs.String(), "ModelNotReadyException") || !strings.Contains(logs.String(), `"model":"model-a"`) {
		t.Fatalf("Bedrock's error is not in the log:\n%s", logs.String())
	}
	// The next request skips the cooling model without calling it.
	if res, err := r.Converse(context.Background(), chatRequest(false)); err != nil || len(res.Attempts) != 1 || res.Model.ID != "model-b" {
		t.Fatalf("second request: %v %+v", err, res)
	}
	// The router is the one retry layer: the SDK sent the failed call once.
	if n := w.stats().Models["model-a"].Requests; n != 1 {
		t.Fatalf("model-a received %d requests, want 1 (SDK retries are off)", n)
	}

	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   string
		labels map[string]string
		check  func(float64) bool
		expect string
	}{
		{"prism_model_invocations_total", map[string]string{"model": "model-a", "outcome": "not_ready"}, eq(1), "1"},
		{"prism_model_invocations_total", map[string]string{"model": "model-b", "outcome": "ok"}, eq(2), "2"},
		{"prism_model_fallbacks_total", map[string]string{"model": "model-b"}, eq(2), "2"},
		// Cooling refusals: the first request's second hop, and the second request.
		{"prism_model_capacity_refusals_total", map[string]string{"model": "model-a", "reason": "cooling"}, eq(2), "2"},
		{"prism_model_latency_seconds", map[string]string{"model": "model-b"}, eq(2), "2 observations"},
		{"prism_model_input_tokens_total", map[string]string{"model": "model-b"}, positive, "> 0"},
		{"prism_model_output_tokens_total", map[string]string{"model": "model-b"}, positive, "> 0"},
		{"prism_model_cost_usd_total", map[string]string{"model": "model-b"}, positive, "> 0"},
		{"prism_model_cooldown_seconds", map[string]string{"model": "model-a"}, func(v float64) bool { return v > 15 && v <= 20 }, "in (15, 20]"},
		{"prism_model_cooldown_seconds", map[string]string{"model": "model-b"}, eq(0), "0"},
		{"prism_model_window_requests_available", map[string]string{"model": "model-a"}, eq(100), "100 (the not-ready call is refunded)"},
		{"prism_model_limit_scale", map[string]string{"model": "model-a"}, eq(1), "1"},
		{"prism_model_window_tokens_available", map[string]string{"model": "model-a"}, eq(100_000_000), "the whole quota (refunded)"},
		{"prism_model_breaker_open", map[string]string{"model": "model-a"}, eq(0), "0"},
	}
	for _, c := range want {
		v, ok := metricValue(fams, c.name, c.labels)
		if !ok || !c.check(v) {
			t.Errorf("%s%v = %v (found %v), want %s", c.name, c.labels, v, ok, c.expect)
		}
	}
	// model-b's window: 2 calls reserved; its unused tokens come back with
	// this replica's next write, so only the request count is exact here.
	if v, _ := metricValue(fams, "prism_model_window_requests_available", map[string]string{"model": "model-b"}); v != 98 {
		t.Errorf("model-b requests available %v, want 98", v)
	}
}

// twoModels is model-a, with faults, and model-b behind it (100
// requests/min, a 20 s cooldown, list prices each), and one replica with
// its metrics and state collector on reg.
func twoModels(t *testing.T, faults bedrocksim.Faults) (*world, *router.Router, *router.Shared, *prometheus.Registry) {
	t.Helper()
	specs := []spec{
		{id: "model-a", simRPM: 100, routerRPM: 100, cooldownSec: 20},
		{id: "model-b", simRPM: 100, routerRPM: 100, cooldownSec: 20},
	}
	w := newWorld(t, 1, specs)
	if err := w.sim.SetFaults("model-a", faults); err != nil {
		t.Fatal(err)
	}
	chain := chainOf(specs)
	for i := range chain {
		chain[i].PricePer1kInput, chain[i].PricePer1kOutput = 0.003, 0.015
	}
	reg := prometheus.NewRegistry()
	r, shared := w.replicaWith(chain, router.Options{MaxWait: time.Second}, router.NewMetrics(reg))
	reg.MustRegister(router.NewStateCollector(shared, chain))
	return w, r, shared, reg
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func positive(v float64) bool            { return v > 0 }

// metricValue finds one series: a counter's or gauge's value, or a
// histogram's observation count.
func metricValue(fams []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// A throttle that carries Retry-After (through the real client and the
// simulator) cools the model for the hint when it is longer than the
// configured cooldown, and the throttle is counted.
func TestThrottleRetryAfterSetsTheCooldown(t *testing.T) {
	_, r, shared, reg := twoModels(t, bedrocksim.Faults{Throttle: 1, RetryAfterSeconds: 90})
	res, err := r.Converse(context.Background(), chatRequest(false))
	if err != nil || res.Model.ID != "model-b" || res.Attempts[0].Outcome != "throttled" {
		t.Fatalf("%v %+v: want a throttle on model-a, then model-b", err, res)
	}
	snap, err := shared.Snapshot(context.Background(), r.Chain()[0])
	if err != nil || snap.CoolingFor < 85*time.Second || snap.CoolingFor > 90*time.Second {
		t.Fatalf("model-a cools for %v (%v), want the 90 s Retry-After, not its 20 s cooldown", snap.CoolingFor, err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := metricValue(fams, "prism_model_invocations_total", map[string]string{"model": "model-a", "outcome": "throttled"}); v != 1 {
		t.Fatalf("throttles counted %v, want 1", v)
	}
}
