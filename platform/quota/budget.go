package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
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

// UsageStream is the stream of the daily token counts: a JetStream
// counter stream (AllowMsgCounter), one subject per owner and UTC day,
// UsageRoot.<owner>.<yyyymmdd>. Every count is one publish carrying its
// increment (Nats-Incr); the server adds it to the subject's last total
// and stores the new total, so a count reads and writes a record of fixed
// size however many runs the owner has had that day. The policy key stays
// in the limits bucket.
const (
	UsageStream = "PRISM_USAGE"
	UsageRoot   = "prism.usage.tokens"
)

// forgetCounted is the stream's duplicates window: how long a counted
// delivery's message id is remembered. A count is repeated only by the
// handler that made it, retrying a publish whose acknowledgement was
// lost, seconds later; a redelivery is a new delivery with an id of its
// own.
const forgetCounted = time.Hour

// countsKept bounds the totals stored per owner and day. Only the last is
// read, but a server that restarts rebuilds its duplicate ids from the
// stored messages of the window, so the last thousands are kept rather
// than the last one: a retry seconds later is still recognised.
const countsKept = 10_000

// UsageStreamConfig is the stream of the daily token counts at replicas:
// `prism setup` creates it, Open binds it.
func UsageStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        UsageStream,
		Description: "daily model tokens per owner: one counter per owner and UTC day",
		Subjects:    []string{UsageRoot + ".>"},
		// The server keeps the running total; Used reads the last one
		// directly, from any replica.
		AllowMsgCounter: true,
		AllowDirect:     true,
		Retention:       jetstream.LimitsPolicy,
		Discard:         jetstream.DiscardOld, // a counter stream cannot discard new
		// A NATS restart must not hand out a fresh daily budget.
		Storage:           jetstream.FileStorage,
		MaxAge:            keep, // a day's last total must outlive the day
		MaxMsgsPerSubject: countsKept,
		Duplicates:        forgetCounted,
		Replicas:          max(replicas, 1),
	}
}

// Spend counts tokens spent by one delivery of a document's run, on
// today's count of owner, exactly once: the count's message id is
// document, run and delivery, so counting again (a retried publish whose
// acknowledgement was lost) within the duplicates window changes nothing.
// A redelivery is another delivery and counts what it spends itself,
// which is what the model was paid for again (cached work is free).
// delivery 0 (unknown) counts as 1. With no limit, nothing is counted.
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
	msg := nats.NewMsg(usageSubject(k))
	msg.Header.Set(jetstream.MsgIDHeader, k+":"+runKey+"#"+strconv.FormatUint(delivery, 10))
	msg.Header.Set(incrHeader, strconv.FormatInt(tokens, 10))
	ack, err := b.s.js.PublishMsg(ctx, msg)
	if err != nil {
		return fmt.Errorf("count %d tokens of %s: %w", tokens, runKey, err)
	}
	if !ack.Duplicate && ack.Value == strconv.FormatInt(tokens, 10) {
		// The day's first count: carry over what the older record (a KV
		// key per owner and day) counted before the stream was in use.
		if err := b.carryOver(ctx, k, msg.Subject); err != nil {
			return err
		}
	}
	b.mu.Lock()
	stale := b.s.now().Sub(b.published) > republish
	b.mu.Unlock()
	if stale {
		return b.Publish(ctx)
	}
	return nil
}

// incrHeader carries a counter's increment (nats-server's JSMessageIncr).
const incrHeader = "Nats-Incr"

// carryOver adds the older record's count of day key k to the counter on
// subject, once (by message id), and deletes the older record.
func (b *Budget) carryOver(ctx context.Context, k, subject string) error {
	entry, err := b.s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the older count %s: %w", k, err)
	}
	var old struct {
		Used int64 `json:"used"`
	}
	if json.Unmarshal(entry.Value(), &old) == nil && old.Used > 0 {
		msg := nats.NewMsg(subject)
		msg.Header.Set(jetstream.MsgIDHeader, k+":carried")
		msg.Header.Set(incrHeader, strconv.FormatInt(old.Used, 10))
		if _, err := b.s.js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("carry over the older count %s: %w", k, err)
		}
	}
	if err := b.s.kv.Delete(ctx, k); err != nil {
		return fmt.Errorf("delete the older count %s: %w", k, err)
	}
	return nil
}

// Used is owner's count of today: the last total of their counter.
func (b *Budget) Used(ctx context.Context, owner string) (int64, error) {
	k, err := b.dayKey(owner)
	if err != nil {
		return 0, err
	}
	last, err := b.s.usage.GetLastMsgForSubject(ctx, usageSubject(k))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read tokens of %s today: %w", owner, err)
	}
	var total struct {
		Val string `json:"val"`
	}
	if err := json.Unmarshal(last.Data, &total); err != nil {
		return 0, fmt.Errorf("read tokens of %s today: %w", owner, err)
	}
	used, err := strconv.ParseInt(total.Val, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read tokens of %s today: %w", owner, err)
	}
	return used, nil
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

// usageSubject is the counter's subject of day key k
// (tokens.<owner>.<yyyymmdd>).
func usageSubject(k string) string { return UsageRoot + strings.TrimPrefix(k, "tokens") }

// dayKey is the key of owner's count of today (UTC) in the older record,
// and the base of its counter's subject and message ids.
func (b *Budget) dayKey(owner string) (string, error) {
	k, err := key("tokens", owner)
	return k + "." + b.s.now().UTC().Format("20060102"), err
}
