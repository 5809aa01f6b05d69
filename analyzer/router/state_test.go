package router_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

// A throttle's cooldown honours the service's retry hint, and a later
// throttle never shortens it (extend-only), for every replica reading it.
func TestCooldownHonoursRetryHintAndOnlyExtends(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	shared, err := createShared(ctx, js, "cooldown", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := createShared(ctx, js, "cooldown", 1, nil) // another replica
	if err != nil {
		t.Fatal(err)
	}
	m := router.Model{ID: "m:1", RequestsPerMinute: 100, TokensPerMinute: 100_000, CooldownSeconds: 10, ContextTokens: 1000, MaxOutputTokens: 100}
	throttle := func(s *router.Shared, hint time.Duration) {
		res, _, err := s.Reserve(ctx, m, 10, false)
		if err != nil || res == nil {
			t.Fatalf("reserve: %v %v", res, err)
		}
		if err := s.Settle(ctx, res, 0, router.Throttled, hint); err != nil {
			t.Fatal(err)
		}
	}
	throttle(shared, 90*time.Second)
	snap, err := other.Snapshot(ctx, m)
	if err != nil || snap.CoolingFor < 80*time.Second {
		t.Fatalf("the other replica sees a cooldown of %v (%v), want the 90 s hint", snap.CoolingFor, err)
	}
	// While cooling nothing can be reserved; a late 429 from a call that
	// was already in flight settles with no hint.
	if res, ref, _ := other.Reserve(ctx, m, 10, false); res != nil || ref.Reason != "cooling" {
		t.Fatalf("a cooling model was reserved: %+v %+v", res, ref)
	}
	if err := other.Settle(ctx, &router.Reservation{Model: m, Tokens: 10}, 0, router.Throttled, 0); err != nil {
		t.Fatal(err)
	}
	if snap, _ := shared.Snapshot(ctx, m); snap.CoolingFor < 80*time.Second {
		t.Fatalf("a later, shorter throttle cut the cooldown to %v", snap.CoolingFor)
	}
}

// A request larger than every model's context window, or than a whole
// minute of every model's token quota, is refused as too large: never
// retried, never waiting.
func TestTooLargeForEveryModel(t *testing.T) {
	for _, c := range []struct {
		name         string
		tpm, in, out int
	}{
		{"context window", 0, router.DefaultChain()[0].ContextTokens + 1, 64},
		// Over 50,000 with any model's output budget (capped at 4,096 or
		// 8,192 on the older models).
		{"a minute's token quota", 50_000, 48_000, 20_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			chain := router.DefaultChain()
			for i := range chain {
				if c.tpm > 0 {
					chain[i].TokensPerMinute = c.tpm
				}
			}
			r, err := router.New(chain, oneNode(t, "limits").replicas(t, 1, nil)[0], instant{}, router.Options{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			req := chatRequest(false)
			req.InputTokens, req.MaxOutputTokens = c.in, c.out
			if _, err := r.Converse(context.Background(), req); !errors.Is(err, router.ErrTooLarge) {
				t.Fatalf("want ErrTooLarge, got %v", err)
			}
		})
	}
}

// Concurrent reservations of one model in one replica are written in
// groups: a burst takes a few writes of the model's key, not one each,
// and the quota still holds exactly (each reservation sees the ones
// before it in its group); successes settled meanwhile are kept.
func TestConcurrentReservationsWriteInGroups(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	shared, err := createShared(ctx, js, "groups", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "groups")
	if err != nil {
		t.Fatal(err)
	}
	const burst, quota = 60, 40
	m := router.Model{ID: "m:1", RequestsPerMinute: quota, TokensPerMinute: 1_000_000, CooldownSeconds: 10, ContextTokens: 1000, MaxOutputTokens: 100}
	// One reservation first, settled as a success: its refund is written
	// with the burst's first write.
	first, _, err := shared.Reserve(ctx, m, 100, true)
	if err != nil || first == nil {
		t.Fatalf("reserve: %v %v", first, err)
	}
	if err := shared.Settle(ctx, first, 10, router.Succeeded, 0); err != nil {
		t.Fatal(err)
	}
	before, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := make(chan struct{})
	var reserved, refused atomic.Int64
	var wg sync.WaitGroup
	for range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, ref, err := shared.Reserve(ctx, m, 100, true)
			switch {
			case err != nil:
				t.Error(err)
			case res != nil:
				reserved.Add(1)
			case ref != nil && ref.Reason == "requests":
				refused.Add(1)
			default:
				t.Errorf("neither reserved nor refused for want of requests: %+v", ref)
			}
		}()
	}
	close(start)
	wg.Wait()
	if reserved.Load() != quota-1 || refused.Load() != burst-quota+1 {
		t.Fatalf("%d reserved and %d refused of %d; want %d reserved (the quota less the first) and the rest refused", reserved.Load(), refused.Load(), burst, quota-1)
	}
	after, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Writes of the key: its stream's messages in between (history 1
	// keeps one, the sequence counts them all).
	writes := after.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq - before.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
	if writes > burst/4 {
		t.Errorf("%d writes for a burst of %d reservations, want a few groups", writes, burst)
	}
	snap, err := shared.Snapshot(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Requests != 0 || snap.Tokens != m.TokensPerMinute-(quota-1)*100-10 {
		t.Errorf("the window has %d requests and %d tokens left; want none and every token but the reservations' and the first call's 10", snap.Requests, snap.Tokens)
	}
	t.Logf("%d writes for %d reservations", writes, burst)
}
