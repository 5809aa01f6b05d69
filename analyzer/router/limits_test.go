package router_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/router"
)

// manualClock moves only when a test says so: window edges, cooldowns
// and breaker timeouts are then exact.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock { return &manualClock{now: time.Unix(1_800_000_000, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.advance(d)
	return ctx.Err()
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func reserve(t *testing.T, s *router.Shared, m router.Model, tokens int) (*router.Reservation, *router.Refusal) {
	t.Helper()
	res, ref, err := s.Reserve(context.Background(), m, tokens, false)
	if err != nil {
		t.Fatal(err)
	}
	return res, ref
}

func mustReserve(t *testing.T, s *router.Shared, m router.Model, tokens int) *router.Reservation {
	t.Helper()
	res, ref := reserve(t, s, m, tokens)
	if res == nil {
		t.Fatalf("reserve %d tokens of %s refused: %+v", tokens, m.ID, ref)
	}
	return res
}

func mustRefuse(t *testing.T, s *router.Shared, m router.Model, tokens int, reason string, wait time.Duration) {
	t.Helper()
	res, ref := reserve(t, s, m, tokens)
	if res != nil {
		t.Fatalf("reserve %d tokens of %s granted, want refused for %s", tokens, m.ID, reason)
	}
	if ref.Reason != reason || ref.Wait != wait {
		t.Fatalf("refused for %s, wait %v; want %s, wait %v", ref.Reason, ref.Wait, reason, wait)
	}
}

func snapshot(t *testing.T, s *router.Shared, m router.Model) router.Snapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func settle(t *testing.T, s *router.Shared, res *router.Reservation, used int, o router.Outcome) {
	t.Helper()
	if err := s.Settle(context.Background(), res, used, o, 0); err != nil {
		t.Fatal(err)
	}
}

func model(rpm, tpm int) router.Model {
	return router.Model{ID: "anthropic.m:1", RequestsPerMinute: rpm, TokensPerMinute: tpm, CooldownSeconds: 10, ContextTokens: 100_000, MaxOutputTokens: 1000}
}

// The limits hold alike on one NATS server and on a cluster of three
// with the state replicated, each replica on its own node.
func TestLimitsOnEachTopology(t *testing.T) {
	onEachTopology(t, []topologyCase{
		{"token limit holds and settling refunds the unused", tokenLimitHoldsAndSettlingRefundsTheUnused},
		{"request limit holds across replicas", requestLimitHoldsAcrossReplicas},
		{"request limit holds when replicas reserve at once", requestLimitHoldsWhenReplicasReserveAtOnce},
		{"dead replica's reservations expire with the window", deadReplicaReservationsExpireWithTheWindow},
		{"breaker opens on error rate and half-open probe", breakerOpensOnErrorRateAndHalfOpenProbe},
		{"not ready cools without lowering the limit", notReadyCoolsWithoutLoweringTheLimit},
		{"lowered limit creeps back while it binds", loweredLimitCreepsBackWhileItBinds},
	})
}

// The tokens-per-minute limit holds across replicas; a call reserves its
// estimate and, once settled, gives back what it did not use.
func tokenLimitHoldsAndSettlingRefundsTheUnused(t *testing.T, st state) {
	clock := newManualClock()
	rs := st.replicas(t, 2, clock)
	a, b := rs[0], rs[1]
	m := model(100, 1000)

	first := mustReserve(t, a, m, 600)
	// The other replica sees the 600 taken: 600 more would pass the limit
	// until the second they were reserved in leaves the 61 s window.
	mustRefuse(t, b, m, 600, "tokens", router.Window*time.Second)
	clock.advance(10 * time.Second)
	mustRefuse(t, b, m, 600, "tokens", (router.Window-10)*time.Second)

	// The call used 100 of its 600: 500 come back.
	settle(t, a, first, 100, router.Succeeded)
	second := mustReserve(t, a, m, 600)
	snap := snapshot(t, b, m)
	if snap.Tokens != 1000-100-600 || snap.Requests != 100-2 {
		t.Fatalf("another replica sees %d tokens and %d requests left, want %d and %d", snap.Tokens, snap.Requests, 300, 98)
	}
	// A throttled call took nothing: its request and tokens come back (of
	// limits the throttle has just halved: the adaptive decrease).
	settle(t, a, second, 0, router.Throttled)
	snap = snapshot(t, b, m)
	if snap.Scale != 0.5 || snap.Tokens != 500-100 || snap.Requests != 50-1 {
		t.Fatalf("after a throttle: scale %.2f, %d tokens and %d requests left; want 0.5, 400 and 49", snap.Scale, snap.Tokens, snap.Requests)
	}
}

// The requests-per-minute limit holds across replicas too.
func requestLimitHoldsAcrossReplicas(t *testing.T, st state) {
	clock := newManualClock()
	rs := st.replicas(t, 3, clock)
	m := model(6, 1_000_000)
	for i := range 6 {
		mustReserve(t, rs[i%3], m, 10)
	}
	for _, s := range rs {
		mustRefuse(t, s, m, 10, "requests", router.Window*time.Second)
	}
}

// The request limit holds exactly when replicas reserve at once: on a
// cluster, a write racing another one in flight on the same key comes back
// as ErrKeyRevisionMismatch alone, a conflict to retry, not a failure.
func requestLimitHoldsWhenReplicasReserveAtOnce(t *testing.T, st state) {
	ctx := context.Background()
	m := model(20, 1_000_000)
	rs := st.replicas(t, 3, nil)
	var granted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 3 * m.RequestsPerMinute {
		wg.Go(func() {
			res, ref, err := rs[i%3].Reserve(ctx, m, 10, false)
			switch {
			case err != nil:
				t.Errorf("reserve: %v", err)
			case res != nil:
				granted.Add(1)
			case ref != nil:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != int64(m.RequestsPerMinute) || refused.Load() != int64(2*m.RequestsPerMinute) {
		t.Fatalf("%d reserved, %d refused; want %d and %d", granted.Load(), refused.Load(), m.RequestsPerMinute, 2*m.RequestsPerMinute)
	}
}

// A replica that dies between reserving and settling leaks its
// reservations only until they leave the window: at most 61 s.
func deadReplicaReservationsExpireWithTheWindow(t *testing.T, st state) {
	clock := newManualClock()
	rs := st.replicas(t, 2, clock)
	dead, alive := rs[0], rs[1]
	m := model(5, 1000)
	for range 5 {
		mustReserve(t, dead, m, 150) // never settled: the replica dies
	}
	mustRefuse(t, alive, m, 10, "requests", router.Window*time.Second)
	clock.advance(40 * time.Second)
	mustRefuse(t, alive, m, 10, "requests", (router.Window-40)*time.Second)
	clock.advance((router.Window - 40) * time.Second)
	for range 5 {
		mustReserve(t, alive, m, 150)
	}
	mustRefuse(t, alive, m, 10, "requests", router.Window*time.Second)
}

// The breaker opens on the rate of server errors, not on one bad call;
// open, it refuses every replica until one half-open probe may test the
// model; a failed probe reopens it, a good one closes it.
func breakerOpensOnErrorRateAndHalfOpenProbe(t *testing.T, st state) {
	clock := newManualClock()
	rs := st.replicas(t, 2, clock)
	a, b := rs[0], rs[1]
	m := model(1000, 10_000_000)
	call := func(s *router.Shared, o router.Outcome) {
		t.Helper()
		settle(t, s, mustReserve(t, s, m, 10), 10, o)
	}
	open := func() bool {
		t.Helper()
		return snapshot(t, b, m).BreakerOpen
	}

	// Errors among mostly good calls: 6 of 16 (37.5%) keep it closed.
	for range 10 {
		call(a, router.Succeeded)
	}
	for range 6 {
		call(a, router.ServerError)
	}
	if open() {
		t.Fatal("6 errors in 16 calls opened the breaker")
	}
	// Half the calls failing opens it, for every replica.
	for range 4 {
		call(a, router.ServerError)
	}
	if !open() {
		t.Fatal("10 errors in 20 calls left the breaker closed")
	}
	mustRefuse(t, b, m, 10, "open", 30*time.Second)

	// Half-open: one probe, and nobody else while it is out.
	clock.advance(30 * time.Second)
	probe := mustReserve(t, b, m, 10)
	if !probe.Probe {
		t.Fatal("the first call after the open period is not a probe")
	}
	mustRefuse(t, a, m, 10, "open", 60*time.Second)
	settle(t, b, probe, 10, router.ServerError)
	mustRefuse(t, a, m, 10, "open", 30*time.Second)

	clock.advance(30 * time.Second)
	probe = mustReserve(t, a, m, 10)
	if !probe.Probe {
		t.Fatal("no probe after the second open period")
	}
	settle(t, a, probe, 10, router.Succeeded)
	if open() {
		t.Fatal("a successful probe left the breaker open")
	}
	// Closed and judged afresh: the errors before the probe are forgotten,
	// so one more error does not reopen it.
	call(b, router.ServerError)
	if res := mustReserve(t, b, m, 10); res.Probe || open() {
		t.Fatal("one error after closing reopened the breaker")
	}
}

// ModelNotReady cools the model like a throttle, without lowering its
// adaptive limit: it is not a sign of a quota set too high.
func notReadyCoolsWithoutLoweringTheLimit(t *testing.T, st state) {
	clock := newManualClock()
	rs := st.replicas(t, 2, clock)
	m := model(100, 1_000_000)
	for range 95 {
		settle(t, rs[0], mustReserve(t, rs[0], m, 10), 10, router.Succeeded)
	}
	settle(t, rs[0], mustReserve(t, rs[0], m, 10), 0, router.NotReady)
	mustRefuse(t, rs[1], m, 10, "cooling", 10*time.Second)
	snap := snapshot(t, rs[1], m)
	if snap.Scale != 1 {
		t.Fatalf("ModelNotReady lowered the limit to %.2f of the configured one", snap.Scale)
	}
	// A throttle at the same load does lower it.
	clock.advance(10 * time.Second)
	settle(t, rs[0], mustReserve(t, rs[0], m, 10), 0, router.Throttled)
	if snapshot(t, rs[1], m).Scale >= 1 {
		t.Fatal("a throttle left the limit as configured")
	}
}

// After a throttle lowers the limit, it stays down for a minute, then
// creeps back up (additive increase: +5% of the limit per minute of full
// use) while it is what holds the model back, up to the configured limit.
func loweredLimitCreepsBackWhileItBinds(t *testing.T, st state) {
	clock := newManualClock()
	s := st.replicas(t, 1, clock)[0]
	m := model(100, 10_000_000)
	for range 95 {
		settle(t, s, mustReserve(t, s, m, 10), 10, router.Succeeded)
	}
	settle(t, s, mustReserve(t, s, m, 10), 0, router.Throttled)
	scale := func() float64 {
		t.Helper()
		return snapshot(t, s, m).Scale
	}
	lowered := scale()
	if lowered >= 1 {
		t.Fatal("the throttle did not lower the limit")
	}
	// Full use, second by second: as many calls as the limit lets through.
	use := func(d time.Duration) {
		t.Helper()
		for end := clock.Now().Add(d); clock.Now().Before(end); clock.advance(time.Second) {
			for range 3 {
				if res, _ := reserve(t, s, m, 10); res != nil {
					settle(t, s, res, 10, router.Succeeded)
				}
			}
		}
	}
	use(50 * time.Second)
	if got := scale(); got != lowered {
		t.Fatalf("the limit moved from %.3f to %.3f within a minute of the throttle", lowered, got)
	}
	use(3 * time.Minute)
	if got := scale(); got <= lowered+0.05 || got > 1 {
		t.Fatalf("after 3 minutes of full use the limit is at %.3f of the configured one (lowered to %.3f)", got, lowered)
	}
}
