// Package quota keeps the per-user abuse limits in a JetStream KV bucket,
// so every replica of a role counts against the same numbers: uploads per
// minute and documents in flight (Admit), open event streams and running
// exports (Acquire: leases that free themselves when their holder dies),
// and the daily model-token budget (Spend, CheckBudget).
//
// Every count is one key per user and kind, changed only by
// compare-and-set on a value read fresh from the bucket, so two replicas
// deciding at the same moment cannot both take the last place: the
// second write fails, rereads and decides again. This is the router's
// approach (analyzer/router/state.go) applied to users instead of models.
package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/aiprism/prism/platform/jsbind"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of the limits.
const Bucket = "prism_quota"

// DefaultLeaseTTL is how long a lease outlives its last refresh: a
// replica that dies frees its streams and exports within it.
const DefaultLeaseTTL = 30 * time.Second

// keep is how long a key outlives its last write. Per-minute windows and
// leases are rewritten while in use; a day's token count must last the
// day, and a redelivery may come up to the analyzer's 24 h message age
// later.
const keep = 48 * time.Hour

// Config configures a Store.
type Config struct {
	Bucket   string        // "" = Bucket
	LeaseTTL time.Duration // 0 = DefaultLeaseTTL
	// Now is the clock windows, leases and days are measured with; nil =
	// time.Now.
	Now func() time.Time
}

// Store is the limits' shared state.
type Store struct {
	js       jetstream.JetStream // publishes token counts
	kv       jetstream.KeyValue
	usage    jetstream.Stream // the token counts (UsageStream)
	leaseTTL time.Duration
	now      func() time.Time
}

// BucketConfig is the limits bucket (bucket "" = Bucket) at replicas:
// `prism setup` creates it, the roles bind it with Open.
func BucketConfig(bucket string, replicas int) jetstream.KeyValueConfig {
	if bucket == "" {
		bucket = Bucket
	}
	return jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "per-user limits: uploads per minute, documents in flight, stream and export leases, daily model tokens",
		History:     1,
		// A NATS restart must not hand out a fresh daily budget.
		Storage:  jetstream.FileStorage,
		TTL:      keep,
		Replicas: max(replicas, 1),
	}
}

// Open binds the limits bucket and the token counts, which `prism setup`
// has created (BucketConfig, UsageStreamConfig): every replica of every role that counts does this at
// start.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = Bucket
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	kv, err := jsbind.KeyValue(ctx, js, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("open limits: %w", err)
	}
	usage, err := jsbind.Stream(ctx, js, UsageStream)
	if err != nil {
		return nil, fmt.Errorf("open limits: %w", err)
	}
	return &Store{js: js, kv: kv, usage: usage, leaseTTL: cfg.LeaseTTL, now: cfg.Now}, nil
}

// Limit names a limit.
type Limit string

// The limits.
const (
	LimitUploads  Limit = "uploads-per-minute"
	LimitInFlight Limit = "documents-in-flight"
	LimitTokens   Limit = "daily-tokens"
	// Leases are named by their kind (Acquire).
)

// Exceeded refuses what would go over a limit.
type Exceeded struct {
	Limit Limit
	Max   int64 // the limit
	Used  int64 // what is taken now
	// RetryAfter is when a place is expected to free up: exact for a
	// per-minute window and the daily budget, an estimate for counts that
	// free when something ends.
	RetryAfter time.Duration
}

func (e *Exceeded) Error() string {
	return fmt.Sprintf("limit %s reached: %d of %d; retry in %s", e.Limit, e.Used, e.Max, e.RetryAfter.Round(time.Second))
}

// Conflict reports a compare-and-set conflict. A single node reports one
// as ErrKeyExists (code 10071), a replicated bucket as
// ErrKeyRevisionMismatch alone (code 10164): both mean "someone wrote
// first".
func Conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// maxAttempts bounds the compare-and-set retries of one change: many
// replicas changing one user's count at once take turns, they do not
// fail, but a change that never gets in reports it.
const maxAttempts = 1000

// update applies fn to the value of key with compare-and-set, retrying on
// conflicts with other replicas. fn sees the value as stored (zero when
// there is none or it is unreadable) and reports whether to write it; an
// error from fn ends the update with that error, nothing written. Every
// decision is taken on a value read fresh from the bucket.
func update[T any](ctx context.Context, s *Store, key string, fn func(v *T, now time.Time) (bool, error)) error {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		var v T
		var rev uint64
		entry, err := s.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("read %s: %w", key, err)
		default:
			rev = entry.Revision()
			_ = json.Unmarshal(entry.Value(), &v) // unreadable: start over rather than wedge the user
		}
		write, err := fn(&v, s.now())
		if err != nil || !write {
			return err
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, raw)
		} else {
			_, err = s.kv.Update(ctx, key, raw, rev)
		}
		if err == nil {
			return nil
		}
		if !Conflict(err) {
			return fmt.Errorf("write %s: %w", key, err)
		}
		if attempt > 0 {
			// Replicas keep colliding on this key: step aside for a random
			// moment so that one of them wins.
			wait := time.Duration(rand.Int64N(int64(50*time.Microsecond) << min(attempt, 8)))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return fmt.Errorf("write %s: still conflicting after %d attempts", key, maxAttempts)
}

// keyChars are the characters of an owner id, the rule of every subject
// token (streams.ValidToken); they are also safe in a KV key.
const keyChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

// key is the key of kind for owner. Owner ids are checked at the edge;
// this check keeps a wildcard or a dot from ever reaching another user's
// key.
func key(kind, owner string) (string, error) {
	if owner == "" || len(owner) > 64 || strings.IndexFunc(owner, func(r rune) bool { return !strings.ContainsRune(keyChars, r) }) >= 0 {
		return "", fmt.Errorf("limits: owner id %q is not a valid id", owner)
	}
	return kind + "." + owner, nil
}
