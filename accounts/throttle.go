package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/quota"
	"github.com/nats-io/nats.go/jetstream"
)

// ThrottleBucket is the KV bucket of sign-in attempt counters.
const ThrottleBucket = "prism_signin"

// ThrottlePolicy says how sign-in attempts are slowed: per account and per
// client address, a number of failures is free, then every further
// attempt waits a delay after the last one, doubling with each failure up
// to a cap. Failures are forgotten after a quiet period.
type ThrottlePolicy struct {
	AccountFree int           // failures of one account before delays
	AddressFree int           // failures from one address before delays (offices share addresses)
	Base        time.Duration // the first delay
	Max         time.Duration // the longest delay
	Forget      time.Duration // failures older than this no longer count
}

// DefaultThrottlePolicy: after 5 failures of an account (20 from one
// address), 1 s, doubling to 15 minutes; forgotten after a quiet day.
func DefaultThrottlePolicy() ThrottlePolicy {
	return ThrottlePolicy{AccountFree: 5, AddressFree: 20, Base: time.Second, Max: 15 * time.Minute, Forget: 24 * time.Hour}
}

// ThrottleConfig configures a Throttle.
type ThrottleConfig struct {
	Bucket   string // "" = ThrottleBucket
	Replicas int    // the bucket's replicas (streams.Topology); 0 = 1
	Policy   ThrottlePolicy
	Now      func() time.Time // nil = time.Now
}

// Throttle slows password guessing. Its counters live in a JetStream KV
// bucket, so the limits hold across API replicas: an attacker spreading
// attempts over replicas meets the same counters. Keys are hashes of the
// email and the address, so the bucket names neither.
type Throttle struct {
	kv  jetstream.KeyValue
	p   ThrottlePolicy
	now func() time.Time
}

// Throttled refuses a sign-in attempt: the account or the address must
// wait before the next one.
type Throttled struct {
	Wait time.Duration
	By   string // "account" or "address"
}

func (e *Throttled) Error() string {
	return fmt.Sprintf("too many failed sign-ins for this %s: try again in %s", e.By, e.Wait.Round(time.Second))
}

// throttleRecord is the stored value of a counter.
type throttleRecord struct {
	N    int       `json:"n"`    // attempts not known to have succeeded
	Last time.Time `json:"last"` // the latest of them
}

func (c ThrottleConfig) withDefaults() ThrottleConfig {
	if c.Bucket == "" {
		c.Bucket = ThrottleBucket
	}
	if c.Policy == (ThrottlePolicy{}) {
		c.Policy = DefaultThrottlePolicy()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// ThrottleBucketConfig is the throttle's bucket: `prism setup` creates
// it, the API binds it with OpenThrottle.
func ThrottleBucketConfig(cfg ThrottleConfig) jetstream.KeyValueConfig {
	cfg = cfg.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "sign-in attempts per account and per client address (keys are SHA-256 of them)",
		History:     1,
		Storage:     jetstream.FileStorage,         // a NATS restart does not hand out fresh guesses
		TTL:         cfg.Policy.Forget + time.Hour, // quiet counters disappear
		Replicas:    max(cfg.Replicas, 1),
	}
}

// OpenThrottle binds the throttle bucket (ThrottleBucketConfig), which
// must exist.
func OpenThrottle(ctx context.Context, js jetstream.JetStream, cfg ThrottleConfig) (*Throttle, error) {
	cfg = cfg.withDefaults()
	kv, err := jsbind.KeyValue(ctx, js, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("open sign-in throttle: %w", err)
	}
	return &Throttle{kv: kv, p: cfg.Policy, now: cfg.Now}, nil
}

// Attempt is a sign-in under way. It counts as a failure from the start,
// so a burst of parallel guesses meets the delays too; Succeeded takes it
// back.
type Attempt struct {
	t                *Throttle
	account, address string // keys
}

// Begin admits a sign-in attempt for email from addr, or refuses it with
// *Throttled. Call Succeeded on the attempt when the password was right.
func (t *Throttle) Begin(ctx context.Context, email, addr string) (*Attempt, error) {
	a := &Attempt{t: t, account: throttleKey("acct", email), address: throttleKey("addr", addr)}
	wait, err := t.take(ctx, a.address, t.p.AddressFree)
	if err != nil || wait > 0 {
		return nil, refusal(wait, "address", err)
	}
	wait, err = t.take(ctx, a.account, t.p.AccountFree)
	if err != nil || wait > 0 {
		// The address's count stands: this was an attempt all the same.
		return nil, refusal(wait, "account", err)
	}
	return a, nil
}

func refusal(wait time.Duration, by string, err error) error {
	if err != nil {
		return err
	}
	return &Throttled{Wait: wait, By: by}
}

// Succeeded resets the account's counter and takes the attempt back from
// the address's (it was not a guess).
func (a *Attempt) Succeeded(ctx context.Context) error {
	if err := a.t.kv.Delete(ctx, a.account); err != nil {
		return fmt.Errorf("reset sign-in counter: %w", err)
	}
	return a.t.update(ctx, a.address, func(r *throttleRecord, _ time.Time) bool {
		if r.N == 0 {
			return false
		}
		r.N--
		return true
	})
}

// take counts an attempt on key unless the key must wait; it returns the
// wait.
func (t *Throttle) take(ctx context.Context, key string, free int) (time.Duration, error) {
	var wait time.Duration
	err := t.update(ctx, key, func(r *throttleRecord, now time.Time) bool {
		if wait = t.p.wait(*r, free, now); wait > 0 {
			return false
		}
		r.N++
		r.Last = now
		return true
	})
	return wait, err
}

// wait is how long r must wait at now before its next attempt.
func (p ThrottlePolicy) wait(r throttleRecord, free int, now time.Time) time.Duration {
	if r.N < free {
		return 0
	}
	return max(r.Last.Add(p.delay(r.N-free)).Sub(now), 0)
}

// delay is the wait after the k-th failure beyond the free ones (from 0).
func (p ThrottlePolicy) delay(k int) time.Duration {
	if k >= 62 || p.Base<<k > p.Max || p.Base<<k <= 0 {
		return p.Max
	}
	return p.Base << k
}

// update applies fn to the record of key with compare-and-set, retrying
// on conflicts with other replicas. fn reports whether to write.
func (t *Throttle) update(ctx context.Context, key string, fn func(r *throttleRecord, now time.Time) bool) error {
	for range 100 {
		var rec throttleRecord
		var rev uint64
		entry, err := t.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read sign-in counter: %w", err)
		default:
			rev = entry.Revision()
			_ = json.Unmarshal(entry.Value(), &rec) // unreadable: start over
		}
		now := t.now()
		if now.Sub(rec.Last) > t.p.Forget {
			rec = throttleRecord{}
		}
		if !fn(&rec, now) {
			return nil
		}
		raw, _ := json.Marshal(rec)
		if rev == 0 {
			_, err = t.kv.Create(ctx, key, raw)
		} else {
			_, err = t.kv.Update(ctx, key, raw, rev)
		}
		if err == nil || !quota.Conflict(err) {
			if err != nil {
				return fmt.Errorf("write sign-in counter: %w", err)
			}
			return nil
		}
	}
	return errors.New("write sign-in counter: too many concurrent attempts")
}

// throttleKey is the key of the counter of what, lowercased and trimmed
// (so an email in another case is the same account), hashed.
func throttleKey(kind, what string) string {
	return kind + "." + HashToken(strings.ToLower(strings.TrimSpace(what)))
}
