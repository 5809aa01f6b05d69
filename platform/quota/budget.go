package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The daily model-token budget. Each owner's tokens (input and output of
// every model call made for their documents) are counted per UTC day
// under tokens.<owner>.<yyyymmdd>. The analyzers apply the budget and
// publish its size under policyKey, so the API refuses uploads by the
// number the analyzers use, with no second setting to keep in step.
const policyKey = "policy.tokens"

// republish is how often a budget in use is written again: the bucket
// forgets keys two days after their last write.
const republish = time.Hour

// Budget is a daily token budget per owner.
type Budget struct {
	s     *Store
	limit int64 // tokens per owner per UTC day; 0 = no limit

	mu        sync.Mutex
	published time.Time // when this process last wrote policyKey
}

// Budget returns the budget of limit tokens per owner per UTC day
// (0 = unlimited).
func (s *Store) Budget(limit int64) *Budget { return &Budget{s: s, limit: max(limit, 0)} }

// Limit is the budget's size, 0 for none.
func (b *Budget) Limit() int64 { return b.limit }

// policy is the stored value of policyKey.
type policy struct {
	PerUserPerDay int64 `json:"per_user_per_day"`
}

// Publish records the budget as the one in force, for PublishedBudget.
func (b *Budget) Publish(ctx context.Context) error {
	raw, _ := json.Marshal(policy{PerUserPerDay: b.limit})
	if _, err := b.s.kv.Put(ctx, policyKey, raw); err != nil {
		return fmt.Errorf("publish the daily token budget: %w", err)
	}
	b.mu.Lock()
	b.published = b.s.now()
	b.mu.Unlock()
	return nil
}

// PublishedBudget is the budget the analyzers apply: the last one
// published, unlimited when none has been (within two days; then nothing
// was counted either).
func (s *Store) PublishedBudget(ctx context.Context) (*Budget, error) {
	entry, err := s.kv.Get(ctx, policyKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return s.Budget(0), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the daily token budget: %w", err)
	}
	var p policy
	if err := json.Unmarshal(entry.Value(), &p); err != nil {
		return nil, fmt.Errorf("read the daily token budget: %w", err)
	}
	return s.Budget(p.PerUserPerDay), nil
}

// dayState is one owner's count of one day.
type dayState struct {
	Used int64 `json:"used"`
	// Seen holds, per delivery of a document run ("<document>.<run>#<delivery>"),
	// the unix second it was counted, for forgetCounted: the deliveries a
	// repeated count could come from.
	Seen map[string]int64 `json:"seen,omitempty"`
	// Counted is the record's older form, every delivery of the day by run.
	// It is read, moved into Seen and never written again.
	Counted map[string][]uint64 `json:"counted,omitempty"`
}

// forgetCounted is how long a counted delivery is remembered. A count is
// repeated only by the handler that made it, retrying a write whose
// acknowledgement was lost, seconds later; a redelivery is a new delivery
// with a key of its own. An hour is far beyond any handler's life, and it
// keeps a busy owner's record to an hour of their runs rather than a whole
// day of them, which every count would otherwise rewrite.
const forgetCounted = time.Hour

// count adds tokens for the delivery key k at now, once, and forgets the
// deliveries counted more than forgetCounted ago. It reports whether the
// record changed.
func (st *dayState) count(k string, tokens int64, now time.Time) bool {
	if st.Seen == nil {
		st.Seen = map[string]int64{}
	}
	for run, deliveries := range st.Counted {
		for _, d := range deliveries {
			st.Seen[run+"#"+strconv.FormatUint(d, 10)] = now.Unix()
		}
	}
	migrated := st.Counted != nil
	st.Counted = nil
	if _, ok := st.Seen[k]; ok {
		return migrated
	}
	cutoff := now.Add(-forgetCounted).Unix()
	for sk, at := range st.Seen {
		if at < cutoff {
			delete(st.Seen, sk)
		}
	}
	st.Seen[k] = now.Unix()
	st.Used += tokens
	return true
}

// Spend counts tokens spent by one delivery of a document's run, on
// today's count of owner, exactly once: the count is keyed by document,
// run and delivery, so counting again (a retried write whose
// acknowledgement was lost) changes nothing. A redelivery is another
// delivery and counts what it spends itself, which is what the model was
// paid for again (cached work is free). delivery 0 (unknown) counts as 1.
// With no limit, nothing is counted.
func (b *Budget) Spend(ctx context.Context, owner, document string, run int, delivery uint64, tokens int64) error {
	if b.limit == 0 || tokens <= 0 {
		return nil
	}
	k, err := b.dayKey(owner)
	if err != nil {
		return err
	}
	delivery = max(delivery, 1)
	runKey := document + "." + strconv.Itoa(run)
	seenKey := runKey + "#" + strconv.FormatUint(delivery, 10)
	err = update(ctx, b.s, k, func(st *dayState, now time.Time) (bool, error) {
		return st.count(seenKey, tokens, now), nil
	})
	if err != nil {
		return fmt.Errorf("count %d tokens of %s: %w", tokens, runKey, err)
	}
	b.mu.Lock()
	stale := b.s.now().Sub(b.published) > republish
	b.mu.Unlock()
	if stale {
		return b.Publish(ctx)
	}
	return nil
}

// Used is owner's count of today.
func (b *Budget) Used(ctx context.Context, owner string) (int64, error) {
	k, err := b.dayKey(owner)
	if err != nil {
		return 0, err
	}
	entry, err := b.s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read tokens of %s today: %w", owner, err)
	}
	var st dayState
	_ = json.Unmarshal(entry.Value(), &st) // unreadable: nothing counted
	return st.Used, nil
}

// Check refuses with *Exceeded (LimitTokens, RetryAfter until the budget
// renews at midnight UTC) when owner has spent the day's budget. The
// budget is checked before work starts, not reserved: a document begun
// before it was spent may end beyond it.
func (b *Budget) Check(ctx context.Context, owner string) error {
	if b.limit == 0 {
		return nil
	}
	used, err := b.Used(ctx, owner)
	if err != nil {
		return err
	}
	return b.refuse(used)
}

// refuse is Check's verdict on used tokens.
func (b *Budget) refuse(used int64) error {
	if b.limit == 0 || used < b.limit {
		return nil
	}
	return &Exceeded{Limit: LimitTokens, Max: b.limit, Used: used, RetryAfter: b.Renews().Sub(b.s.now())}
}

// CheckPublished is Check by the published budget (PublishedBudget),
// with the budget and owner's count read at once rather than one after
// the other: a request that checks it waits for one read of the bucket.
func (s *Store) CheckPublished(ctx context.Context, owner string) error {
	var used int64
	var usedErr error
	counted := make(chan struct{})
	go func() {
		defer close(counted)
		used, usedErr = s.Budget(0).Used(ctx, owner)
	}()
	b, err := s.PublishedBudget(ctx)
	<-counted
	switch {
	case err != nil:
		return err
	case b.limit == 0:
		return nil
	case usedErr != nil:
		return usedErr
	}
	return b.refuse(used)
}

// Renews is when the day's budget renews: the next midnight UTC.
func (b *Budget) Renews() time.Time {
	now := b.s.now().UTC()
	return time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
}

// dayKey is the key of owner's count of today (UTC).
func (b *Budget) dayKey(owner string) (string, error) {
	k, err := key("tokens", owner)
	return k + "." + b.s.now().UTC().Format("20060102"), err
}
