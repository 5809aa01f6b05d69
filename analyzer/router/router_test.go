package router_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/router"
)

// scenario skips quota scenarios where their scaled clock cannot be kept:
// under the race detector (`make test` runs them again without it).
func scenario(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("quota scenario: runs without the race detector (make test does)")
	}
	if testing.Short() {
		t.Skip("quota scenario")
	}
}

func threeModels(simRPM, routerRPM int) []spec {
	return []spec{
		{id: "model-a", simRPM: simRPM, routerRPM: routerRPM, cooldownSec: 10},
		{id: "model-b", simRPM: simRPM, routerRPM: routerRPM, cooldownSec: 10},
		{id: "model-c", simRPM: simRPM, routerRPM: routerRPM, cooldownSec: 10},
	}
}

// quotaKind is what a scenario checks a quota of: requests or tokens.
type quotaKind struct {
	name  string
	quota func(spec) int                    // per minute
	peak  func(bedrocksim.ModelStats) int64 // busiest 60 s window
	used  func(bedrocksim.ModelStats) int64 // over the run
}

var (
	requestQuota = quotaKind{"requests", func(s spec) int { return s.simRPM },
		func(m bedrocksim.ModelStats) int64 { return m.PeakRequestsPer60s },
		func(m bedrocksim.ModelStats) int64 { return m.Successes }}
	tokenQuota = quotaKind{"tokens", func(s spec) int { return s.tokensPerMinute() },
		func(m bedrocksim.ModelStats) int64 { return m.PeakTokensPer60s },
		func(m bedrocksim.ModelStats) int64 { return m.InputTokens + m.OutputTokens }}
)

// checkWithinQuota asserts zero throttles, every model's peak 60 s window at
// or under its quota of kind, and the aggregate utilization over the run.
func checkWithinQuota(t *testing.T, w *world, specs []spec, kind quotaKind, virtual time.Duration, minUtil float64) {
	t.Helper()
	st := w.stats()
	var used, capacity float64
	for _, s := range specs {
		m := st.Models[s.id]
		if n := sum(m.Throttles); n != 0 {
			t.Errorf("%s throttled %d times: %s", s.id, n, describe(st))
		}
		if peak := kind.peak(m); peak > int64(kind.quota(s)) {
			t.Errorf("%s peak 60 s window %d %s > quota %d", s.id, peak, kind.name, kind.quota(s))
		}
		used += float64(kind.used(m))
		capacity += float64(kind.quota(s)) * virtual.Minutes()
	}
	util := used / capacity
	t.Logf("used %.0f of %.0f %s of quota in %s of quota time: utilization %.1f%%%s", used, capacity, kind.name, virtual, 100*util, describe(st))
	if util < minUtil {
		t.Errorf("%s utilization %.1f%% < %.0f%%", kind.name, 100*util, 100*minUtil)
	}
}

// saturated runs routers saturated for a virtual duration, fails the test
// if any request failed, and returns the virtual time it took.
func saturated(t *testing.T, w *world, routers []*router.Router, virtual time.Duration) time.Duration {
	t.Helper()
	ta, took := runFor(w, routers, 12, virtual)
	if ta.failed.Load() != 0 {
		t.Fatalf("%d requests failed: %v", ta.failed.Load(), ta.firstErr)
	}
	return took
}

// replicas returns n routers over chain, each its own analyzer process.
func (w *world) replicas(n int, chain router.Chain) []*router.Router {
	var rs []*router.Router
	for range n {
		rs = append(rs, w.replica(chain, 5*time.Second))
	}
	return rs
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// runFor saturates for a virtual duration and returns the virtual time it took.
func runFor(w *world, routers []*router.Router, workers int, virtual time.Duration) (*tally, time.Duration) {
	ta := &tally{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(float64(virtual)/w.clock.Factor))
	defer cancel()
	start := w.clock.Now()
	w.saturate(ctx, routers, workers, ta)
	return ta, w.clock.Now().Sub(start)
}

func TestScenarioOneReplicaSaturatedStaysWithinQuota(t *testing.T) {
	scenario(t)
	specs := threeModels(120, 120)
	w := newWorld(t, 20, specs)
	took := saturated(t, w, w.replicas(1, chainOf(specs)), 2*time.Minute)
	checkWithinQuota(t, w, specs, requestQuota, took, 0.97)
}

// The quota scenarios of several replicas hold alike on one NATS server
// and on a cluster of three with the state replicated, each replica
// connected to another node: the request and token limits, cooldowns and
// fallback, with no request failed.
func TestScenarioReplicasOnEachTopology(t *testing.T) {
	scenario(t)
	onEachTopology(t, []topologyCase{
		{"three replicas share the quota", threeReplicasShareTheQuota},
		{"token quotas hold across replicas", tokenQuotasHoldAcrossReplicas},
		{"bursts of 200 fall back and return to the primary", burstsOf200FallBackAndReturnToPrimary},
	})
}

func threeReplicasShareTheQuota(t *testing.T, st state) {
	specs := threeModels(120, 120)
	w := newWorldOn(t, st, st.factor(), specs)
	took := saturated(t, w, w.replicas(3, chainOf(specs)), 2*time.Minute)
	checkWithinQuota(t, w, specs, requestQuota, took, 0.97)
}

// Token quotas bind before request quotas: three replicas saturating
// models limited to 8,000 tokens/min (about a hundred of these calls, with
// room for a thousand requests) stay within every model's token quota, with
// no throttle, and the tokens reserved but not used come back, so the
// quota is used (at least 90%).
func tokenQuotasHoldAcrossReplicas(t *testing.T, st state) {
	specs := threeModels(1000, 1000)
	for i := range specs {
		specs[i].tpm = 8000
	}
	w := newWorldOn(t, st, st.factor(), specs)
	took := saturated(t, w, w.replicas(3, chainOf(specs)), 2*time.Minute)
	checkWithinQuota(t, w, specs, tokenQuota, took, 0.90)
}

// The original system's story: 600 analysis requests in three bursts of 200
// a second apart, on the seven-model chain, shared by three replicas. The
// primary's real quota is below its configured limit, so it throttles and
// cools down for every replica; nothing fails, and the primary serves
// again once its cooldown is over.
func burstsOf200FallBackAndReturnToPrimary(t *testing.T, st state) {
	var specs []spec
	for _, m := range router.DefaultChain() {
		specs = append(specs, spec{id: m.ID, simRPM: 200, routerRPM: 200, cooldownSec: 20})
	}
	specs[0].simRPM = 120 // the primary's real quota is lower than configured
	w := newWorldOn(t, st, st.factor(), specs)
	var rs []*router.Router
	for range 3 {
		rs = append(rs, w.replica(chainOf(specs), 2*time.Second))
	}
	primary := specs[0].id

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ta := &tally{}
	var wg sync.WaitGroup
	for burst := range 3 {
		for i := range 200 {
			wg.Add(1)
			go func() { defer wg.Done(); w.complete(ctx, rs[i%3], chatRequest(false), ta) }()
		}
		if burst < 2 {
			_ = w.clock.Sleep(ctx, time.Second)
		}
	}
	wg.Wait()
	if ta.ok.Load() != 600 || ta.failed.Load() != 0 {
		t.Fatalf("ok %d failed %d (%v), want 600 and 0", ta.ok.Load(), ta.failed.Load(), ta.firstErr)
	}
	stats := w.stats()
	throttles := sum(stats.Models[primary].Throttles)
	if throttles == 0 {
		t.Fatalf("the primary never throttled; the scenario did not happen: %s", describe(stats))
	}
	t.Logf("bursts served: %v%s", ta.byModel, describe(stats))

	// Later traffic: once the cooldown is over and its window has room,
	// the primary is chosen again.
	end := w.clock.Now().Add(3 * time.Minute)
	backOnPrimary := false
	for i := 0; !backOnPrimary && w.clock.Now().Before(end); i++ {
		res, err := rs[i%3].Converse(ctx, chatRequest(false))
		if err == nil && res.Model.ID == primary {
			backOnPrimary = true
		}
		_ = w.clock.Sleep(ctx, 2*time.Second)
	}
	if !backOnPrimary {
		t.Fatalf("the primary was not used again within 3 minutes: %s", describe(w.stats()))
	}
}

// Limits configured at twice the real quota converge: after the first
// minute, under 2% of calls throttle and at least 90% of the real quota is
// used.
func TestScenarioAdaptiveLimitsConvergeWhenConfiguredTooHigh(t *testing.T) {
	scenario(t)
	specs := threeModels(120, 240)
	w := newWorld(t, 20, specs)
	r := w.replica(chainOf(specs), 5*time.Second)
	// The first minute: learning.
	runFor(w, []*router.Router{r}, 12, time.Minute)
	before := w.stats()
	_, took := runFor(w, []*router.Router{r}, 12, 3*time.Minute)
	after := w.stats()
	var calls, throttles, ok, capacity float64
	for _, s := range specs {
		a, b := after.Models[s.id], before.Models[s.id]
		calls += float64(a.Requests - b.Requests)
		throttles += float64(sum(a.Throttles) - sum(b.Throttles))
		ok += float64(a.Successes - b.Successes)
		capacity += float64(s.simRPM) * took.Minutes()
	}
	t.Logf("after the first minute: %.0f calls, %.0f throttled (%.2f%%), utilization %.1f%% of the real quota%s",
		calls, throttles, 100*throttles/calls, 100*ok/capacity, describe(after))
	if throttles/calls >= 0.02 {
		t.Errorf("throttles %.2f%% of calls, want < 2%%", 100*throttles/calls)
	}
	if ok/capacity < 0.90 {
		t.Errorf("utilization %.1f%%, want >= 90%%", 100*ok/capacity)
	}
}

// Every model answers 503 for a while: requests wait (breakers open, the
// router says when to come back) and all complete once service returns.
func TestScenarioAllModelsUnavailableThenRecover(t *testing.T) {
	scenario(t)
	specs := threeModels(600, 600)
	w := newWorld(t, 20, specs)
	r := w.replica(chainOf(specs), time.Second)
	if err := w.sim.SetFaults("*", bedrocksim.Faults{Storm: &bedrocksim.Storm{Kind: "unavailable", Seconds: 60}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ta := &tally{}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); w.complete(ctx, r, chatRequest(false), ta) }()
	}
	wg.Wait()
	st := w.stats()
	if ta.ok.Load() != 50 || ta.failed.Load() != 0 {
		t.Fatalf("ok %d failed %d (%v): %s", ta.ok.Load(), ta.failed.Load(), ta.firstErr, describe(st))
	}
	var unavailable int64
	for _, m := range st.Models {
		unavailable += m.Errors["ServiceUnavailableException"]
	}
	if unavailable == 0 {
		t.Fatalf("the outage never hit: %s", describe(st))
	}
	t.Logf("50 requests completed after an outage; %d 503s seen, %d busy waits%s", unavailable, ta.busy.Load(), describe(st))
}

// When interactive and batch requests both wait for capacity, the
// interactive one is served first, whether it is a Converse or the
// chatbot's ConverseStream.
func TestScenarioInteractiveGoesBeforeBatch(t *testing.T) {
	scenario(t)
	req := chatRequest(true)
	// In parallel: each waits for its window in real time, using little CPU.
	t.Run("Converse", func(t *testing.T) {
		t.Parallel()
		interactiveFirst(t, func(ctx context.Context, r *router.Router) (*router.Result, error) { return r.Converse(ctx, req) })
	})
	t.Run("ConverseStream", func(t *testing.T) {
		t.Parallel()
		interactiveFirst(t, func(ctx context.Context, r *router.Router) (*router.Result, error) {
			res, err := r.ConverseStream(ctx, req, func(string) error { return nil })
			if err == nil && res.Text == "" {
				err = errors.New("the stream delivered no text")
			}
			return res, err
		})
	})
}

// interactiveFirst has batch Converse calls wait for a full window, then
// an interactive call join them, and fails unless it is served first.
func interactiveFirst(t *testing.T, interactiveCall func(context.Context, *router.Router) (*router.Result, error)) {
	specs := []spec{{id: "only", simRPM: 10, routerRPM: 10, cooldownSec: 5}}
	w := newWorld(t, 10, specs)
	r := w.replica(chainOf(specs), 30*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Use up the window one request a second, so that from now on it frees
	// one request at a time: the order in which waiting requests are served
	// is then visible in their completion times.
	for range 10 {
		if _, err := r.Converse(ctx, chatRequest(false)); err != nil {
			t.Fatal(err)
		}
		_ = w.clock.Sleep(ctx, time.Second)
	}
	batch, interactive := &tally{}, &tally{}
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() { defer wg.Done(); w.complete(ctx, r, chatRequest(false), batch) }()
	}
	_ = w.clock.Sleep(ctx, 200*time.Millisecond) // the batch requests are waiting first
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.completeCall(ctx, func(ctx context.Context) (*router.Result, error) { return interactiveCall(ctx, r) }, interactive)
	}()
	wg.Wait()
	if len(interactive.served) != 1 {
		t.Fatalf("interactive request not served: %v", interactive.firstErr)
	}
	at := interactive.served[0].at
	before := 0
	for _, s := range batch.served {
		if s.at.Before(at) {
			before++
		}
	}
	if before > 0 {
		t.Fatalf("%d batch requests were served before the waiting interactive one", before)
	}
}
