package accounts_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/testenv"
)

// throttles are two replicas' throttles over one NATS server, on a clock
// the test moves.
func throttles(t *testing.T, p accounts.ThrottlePolicy) (one, two *accounts.Throttle, c *testenv.Clock) {
	t.Helper()
	return throttlesOn(t, testenv.Topologies()[0].Start(t), p)
}

// throttlesOn are two replicas' throttles on b, each on its own
// connection (on a cluster, to its own node).
func throttlesOn(t *testing.T, b *testenv.Bus, p accounts.ThrottlePolicy) (one, two *accounts.Throttle, c *testenv.Clock) {
	t.Helper()
	c = testenv.NewClock()
	cfg := accounts.ThrottleConfig{Policy: p, Now: c.Now, Replicas: b.Replicas}
	if err := jsbind.CreateKeyValues(context.Background(), b.Client(t, 0), accounts.ThrottleBucketConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	open := func(i int) *accounts.Throttle {
		th, err := accounts.OpenThrottle(context.Background(), b.Client(t, i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	return open(0), open(1), c
}

// fail makes a failed attempt, which must be admitted.
func fail(t *testing.T, th *accounts.Throttle, email, addr string) {
	t.Helper()
	if _, err := th.Begin(context.Background(), email, addr); err != nil {
		t.Fatalf("attempt for %s from %s refused: %v", email, addr, err)
	}
}

// refused asserts that an attempt is refused by by, with wait.
func refusedFor(t *testing.T, th *accounts.Throttle, email, addr, by string, wait time.Duration) {
	t.Helper()
	_, err := th.Begin(context.Background(), email, addr)
	var te *accounts.Throttled
	if !errors.As(err, &te) || te.By != by || te.Wait != wait {
		t.Fatalf("attempt for %s from %s: %v, want refused by %s for %s", email, addr, err, by, wait)
	}
}

// TestThrottleHoldsAcrossReplicas: failures counted on one replica slow
// the next attempt on the other; delays double to the cap; a success
// resets the account.
func TestThrottleHoldsAcrossReplicas(t *testing.T) {
	p := accounts.DefaultThrottlePolicy()
	one, two, c := throttles(t, p)
	const email, addr = "alice@example.com", "192.0.2.1"
	for i := range p.AccountFree {
		fail(t, []*accounts.Throttle{one, two}[i%2], email, addr)
	}
	refusedFor(t, two, "ALICE@example.com ", "192.0.2.9", "account", time.Second)
	refusedFor(t, one, email, addr, "account", time.Second)
	c.Add(time.Second)
	fail(t, one, email, addr)
	refusedFor(t, two, email, addr, "account", 2*time.Second)
	for wait := 2 * time.Second; wait < p.Max; wait *= 2 {
		c.Add(wait)
		fail(t, []*accounts.Throttle{one, two}[int(wait/time.Second)%2], email, "192.0.2.9")
	}
	refusedFor(t, one, email, addr, "account", p.Max)
	c.Add(p.Max)
	fail(t, two, email, addr)
	refusedFor(t, one, email, addr, "account", p.Max) // capped

	// A success (after the wait) resets the account's counter.
	c.Add(p.Max)
	a, err := one.Begin(context.Background(), email, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Succeeded(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range p.AccountFree {
		fail(t, two, email, addr)
	}
	refusedFor(t, one, email, addr, "account", time.Second)

	// Failures are forgotten after a quiet period.
	c.Add(p.Forget + time.Second)
	fail(t, one, email, addr)
}

// TestThrottlePerAddress: one address guessing across many accounts is
// slowed too.
func TestThrottlePerAddress(t *testing.T) {
	p := accounts.DefaultThrottlePolicy()
	one, two, _ := throttles(t, p)
	for i := range p.AddressFree {
		fail(t, []*accounts.Throttle{one, two}[i%2], fmt.Sprintf("user%d@example.com", i), "198.51.100.7")
	}
	refusedFor(t, one, "fresh@example.com", "198.51.100.7", "address", time.Second)
	fail(t, two, "fresh@example.com", "198.51.100.8") // another address
}

// TestThrottleStopsBursts: parallel attempts on both replicas cannot slip
// through between a check and a count: exactly the free ones pass, on one
// server and on a cluster (where a lost compare-and-set is another error).
func TestThrottleStopsBursts(t *testing.T) {
	testenv.OnEachTopology(t, throttleStopsBursts)
}

func throttleStopsBursts(t *testing.T, b *testenv.Bus) {
	p := accounts.DefaultThrottlePolicy()
	one, two, _ := throttlesOn(t, b, p)
	var admitted atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := []*accounts.Throttle{one, two}[i%2].Begin(context.Background(), "alice@example.com", fmt.Sprintf("203.0.113.%d", i))
			var te *accounts.Throttled
			switch {
			case err == nil:
				admitted.Add(1)
			case !errors.As(err, &te):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != int32(p.AccountFree) {
		t.Fatalf("%d of 40 parallel attempts admitted, want %d", got, p.AccountFree)
	}
}
