package router_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
)

// A throttle's cooldown honours the service's retry hint, and a later
// throttle never shortens it (extend-only), for every replica reading it.
func TestCooldownHonoursRetryHintAndOnlyExtends(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	shared, err := router.OpenShared(ctx, js, "cooldown", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := router.OpenShared(ctx, js, "cooldown", 1, nil) // another replica
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
			r, err := router.New(chain, replicas(t, 1, nil)[0], instant{}, router.Options{}, nil)
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
