package router

import (
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/quota"
	"github.com/nats-io/nats.go/jetstream"
)

// Window is the quota window in whole seconds. Bedrock counts quotas per
// minute; we count per-second bins over 61 s so that the usage in every
// 60 s window stays within the quota even when a request reserved in one
// second reaches Bedrock in the next. (A token bucket would let 2x the quota
// through in the first minute: a full bucket plus a minute of refill.)
const Window = 61

// bin is one second of usage.
type bin struct {
	Sec int64 `json:"s"`           // unix seconds
	Req int   `json:"r"`           // requests reserved
	Tok int   `json:"t"`           // quota tokens reserved (net of refunds)
	Ok  int   `json:"o,omitempty"` // calls reserved this second that succeeded
	Err int   `json:"e,omitempty"` // calls reserved this second that failed with 5xx/timeouts
}

// modelState is one model's shared state, one KV key per model, so a single
// compare-and-set covers its window, cooldown, adaptive limit and breaker:
// every replica reads it fresh and no update is lost.
type modelState struct {
	Bins []bin `json:"bins,omitempty"` // non-empty seconds of the window, oldest first

	CoolUntil int64 `json:"cool_until,omitempty"` // unix ns; extend-only

	// Scale is the adaptive share of the configured limits in use (0.05-1):
	// multiplied down when the model throttles although we had capacity,
	// added back with successes while the limit is what holds us back (see
	// succeeded).
	Scale        float64 `json:"scale"`
	LastDecrease int64   `json:"last_decrease,omitempty"`

	// Circuit breaker over the rate of server errors and timeouts in the
	// last breakerWindow (counted in the bins, from Since on): open (while
	// OpenUntil is set), it refuses every call until OpenUntil, then lets
	// one half-open probe through; the probe's success closes it, its
	// failure reopens it.
	OpenUntil int64 `json:"open_until,omitempty"`
	ProbeTill int64 `json:"probe_till,omitempty"` // a half-open probe is out until then
	Since     int64 `json:"since,omitempty"`      // unix seconds: errors before the last close are forgotten

	// InteractiveWait: an interactive request is waiting for this model
	// until then; batch requests leave capacity to it meanwhile.
	InteractiveWait int64 `json:"interactive_wait,omitempty"`
}

// Breaker and adaptation settings.
const (
	breakerWindow    = 30               // seconds of calls the error rate is taken over
	breakerMinErrors = 5                // fewer errors than this never open it
	breakerErrorRate = 0.5              // share of failed calls in the window that opens it
	breakerOpenFor   = 30 * time.Second // before a half-open probe
	probeLease       = 60 * time.Second // how long one probe may take
	minScale         = 0.05
	interactiveGrace = 2 * time.Second
	decreaseFactor   = 0.9
)

// limits are the current (adapted) limits per window.
func (s *modelState) limits(m Model) (req, tok int) {
	return max(1, int(float64(m.RequestsPerMinute)*s.Scale)), max(1, int(float64(m.TokensPerMinute)*s.Scale))
}

// prune drops seconds that have left the window.
func (s *modelState) prune(now int64) {
	oldest := now/int64(time.Second) - (Window - 1)
	i := 0
	for i < len(s.Bins) && s.Bins[i].Sec < oldest {
		i++
	}
	s.Bins = s.Bins[i:]
}

func (s *modelState) used() (req, tok int) {
	for _, b := range s.Bins {
		req += b.Req
		tok += b.Tok
	}
	return req, tok
}

// freeAt returns when enough old seconds leave the window for need more of
// a quantity (selected by get) to fit under limit.
func (s *modelState) freeAt(used, need, limit int, get func(bin) int) int64 {
	excess := used + need - limit
	for _, b := range s.Bins {
		excess -= get(b)
		if excess <= 0 {
			return (b.Sec + Window) * int64(time.Second)
		}
	}
	return (s.Bins[len(s.Bins)-1].Sec + Window) * int64(time.Second)
}

func (s *modelState) add(now int64, req, tok int) int64 {
	sec := now / int64(time.Second)
	if n := len(s.Bins); n > 0 && s.Bins[n-1].Sec == sec {
		s.Bins[n-1].Req += req
		s.Bins[n-1].Tok += tok
	} else {
		s.Bins = append(s.Bins, bin{Sec: sec, Req: req, Tok: tok})
	}
	return sec
}

// refund gives back requests and tokens reserved in second sec, if it is
// still in the window.
func (s *modelState) refund(sec int64, req, tok int) {
	if b := s.binAt(sec); b != nil {
		b.Req = max(0, b.Req-req)
		b.Tok = max(0, b.Tok-tok)
	}
}

// binAt is second sec's bin, nil once it has left the window.
func (s *modelState) binAt(sec int64) *bin {
	for i := range s.Bins {
		if s.Bins[i].Sec == sec {
			return &s.Bins[i]
		}
	}
	return nil
}

func freshState() modelState { return modelState{Scale: 1} }

// Shared is the cluster-wide limiter state in a JetStream KV bucket.
type Shared struct {
	kv    jetstream.KeyValue
	clock Clock
	// slots serialize this process's updates of one model (concurrent
	// requests in one replica queue here instead of racing each other's
	// compare-and-set, so conflicts happen only between replicas) and
	// remember the last state and revision this process wrote.
	slots sync.Map // key -> *slot
}

// slot is this process's view of one model's state. A write based on it
// succeeds only if no other replica wrote since (the revision still
// matches), so using it is as exact as reading first, and saves the read.
//
// Updates queue on the slot and are written in groups: the one that gets
// to write applies every update queued meanwhile, in order, to the same
// state and writes them with one compare-and-set, so a burst of requests
// for one model costs a round trip or two, not one each in turn.
type slot struct {
	mu    sync.Mutex // held by the update writing; guards known, rev, st and the waiters' results
	known bool
	rev   uint64
	st    modelState

	qmu   sync.Mutex // guards queue and pending
	queue []*waiter
	// pending successes, applied with this process's next write of the
	// model: a success needs no write of its own, which halves the writes
	// per call. If the process dies first, the unreturned tokens leave the
	// window within a minute anyway.
	pending []refund
}

// waiter is one update of a slot, queued until a write takes it.
type waiter struct {
	ctx  context.Context
	fn   func(st *modelState, now int64) bool
	done bool // its write has happened, or failed (err)
	err  error
}

type refund struct {
	sec int64
	tok int
}

func (s modelState) clone() modelState {
	s.Bins = append([]bin(nil), s.Bins...)
	return s
}

// BucketConfig is the limiter bucket: `prism setup` creates it, the
// analyzers bind it with OpenShared. The state is soft: if it is lost,
// the windows start empty and the adaptive limits relearn, so memory
// storage is enough and keeps compare-and-set fast.
func BucketConfig(bucket string, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "analyzer router: per-model per-second usage windows, cooldowns, breakers",
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    max(replicas, 1),
	}
}

// OpenShared binds the limiter bucket (BucketConfig), which must exist.
func OpenShared(ctx context.Context, js jetstream.JetStream, bucket string, clock Clock) (*Shared, error) {
	if clock == nil {
		clock = WallClock{}
	}
	kv, err := jsbind.KeyValue(ctx, js, bucket)
	if err != nil {
		return nil, fmt.Errorf("open router state: %w", err)
	}
	return &Shared{kv: kv, clock: clock}, nil
}

var keyEnc = base32.HexEncoding.WithPadding(base32.NoPadding)

// KeyToken encodes a model id (which holds ':' and '.') as one KV key token.
func KeyToken(id string) string { return keyEnc.EncodeToString([]byte(id)) }

// stateKey is a model's key in the limiter bucket.
func stateKey(id string) string { return "m." + KeyToken(id) }

// update applies fn to the model's state with compare-and-set, retrying on
// conflicts. fn reports whether to write. A decision not to write (a
// refusal) is only taken on state read fresh from the bucket, or on state
// that a write of the same group proved current, never on this process's
// remembered copy alone: cooldowns and windows are read fresh.
func (s *Shared) update(ctx context.Context, m Model, fn func(st *modelState, now int64) bool) error {
	key := stateKey(m.ID)
	v, _ := s.slots.LoadOrStore(key, &slot{})
	sl := v.(*slot)
	w := &waiter{ctx: ctx, fn: fn}
	sl.qmu.Lock()
	sl.queue = append(sl.queue, w)
	sl.qmu.Unlock()
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if !w.done {
		// No write took it while it waited: this one writes, for itself
		// and for every update queued meanwhile.
		sl.qmu.Lock()
		group := sl.queue
		sl.queue = nil
		sl.qmu.Unlock()
		s.write(ctx, m, key, sl, group)
	}
	return w.err
}

// write applies a group of updates, in order, with one compare-and-set,
// on ctx (its first waiter's). Updates whose callers have left are
// dropped unapplied (a reservation nobody would use); if ctx ends, the
// others go back to the queue for the next writer.
func (s *Shared) write(ctx context.Context, m Model, key string, sl *slot, group []*waiter) {
	live := group[:0:0]
	for _, w := range group {
		if err := w.ctx.Err(); err != nil {
			w.done, w.err = true, err
			continue
		}
		live = append(live, w)
	}
	finish := func(err error) {
		for _, w := range live {
			w.done, w.err = true, err
		}
	}
	for attempt := 0; len(live) > 0; attempt++ {
		if err := ctx.Err(); err != nil {
			live[0].done, live[0].err = true, err
			sl.qmu.Lock()
			sl.queue = append(live[1:len(live):len(live)], sl.queue...)
			sl.qmu.Unlock()
			return
		}
		fresh := false
		if !sl.known {
			if err := s.load(ctx, key, sl); err != nil {
				finish(fmt.Errorf("read state of %s: %w", m.ID, err))
				return
			}
			fresh = true
		}
		now := s.clock.Now().UnixNano()
		st := sl.st.clone()
		st.prune(now)
		sl.qmu.Lock()
		pending := sl.pending[:len(sl.pending):len(sl.pending)]
		sl.qmu.Unlock()
		changed := applyPending(&st, m, now, pending)
		for _, w := range live {
			changed = w.fn(&st, now) || changed
		}
		if !changed {
			if fresh {
				finish(nil)
				return
			}
			sl.known = false // confirm the refusals on fresh state
			continue
		}
		raw, _ := json.Marshal(st)
		var rev uint64
		var err error
		if sl.rev == 0 {
			rev, err = s.kv.Create(ctx, key, raw)
		} else {
			rev, err = s.kv.Update(ctx, key, raw, sl.rev)
		}
		if err == nil {
			sl.rev, sl.st, sl.known = rev, st, true
			sl.qmu.Lock()
			sl.pending = append(sl.pending[:0], sl.pending[len(pending):]...) // successes settled meanwhile stay
			sl.qmu.Unlock()
			finish(nil)
			return
		}
		sl.known = false
		if !quota.Conflict(err) || attempt > 1000 {
			finish(fmt.Errorf("write state of %s: %w", m.ID, err))
			return
		}
		if attempt > 0 {
			// Replicas keep colliding on this model: step aside for a
			// random moment so that one of them wins.
			time.Sleep(time.Duration(rand.Int64N(int64(50*time.Microsecond) << min(attempt, 6))))
		}
	}
}

// load reads the model's state into sl.
func (s *Shared) load(ctx context.Context, key string, sl *slot) error {
	st, rev, err := s.read(ctx, key)
	if err != nil {
		return err
	}
	sl.st, sl.rev, sl.known = st, rev, true
	return nil
}

// read returns the model's state in the bucket and its revision (0 when
// there is none yet).
func (s *Shared) read(ctx context.Context, key string) (modelState, uint64, error) {
	entry, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return freshState(), 0, nil
	case err != nil:
		return modelState{}, 0, err
	}
	var st modelState
	if err := json.Unmarshal(entry.Value(), &st); err != nil || st.Scale <= 0 {
		st = freshState() // unreadable state: start over rather than wedge the model
	}
	return st, entry.Revision(), nil
}

// Reservation is capacity taken from a model for one call.
type Reservation struct {
	Model  Model
	Tokens int   // quota tokens reserved
	Sec    int64 // the second they were reserved in
	Probe  bool  // this call is the breaker's half-open probe
}

// Refusal says why a model cannot take a call now and when to ask again.
type Refusal struct {
	Reason string        // cooling, open, requests, tokens, yielding
	Wait   time.Duration // until capacity is expected
}

// Reserve takes one request and tokens quota tokens from m, or refuses
// with the time until it could succeed.
func (s *Shared) Reserve(ctx context.Context, m Model, tokens int, interactive bool) (*Reservation, *Refusal, error) {
	var res *Reservation
	var ref *Refusal
	err := s.update(ctx, m, func(st *modelState, now int64) bool {
		res, ref = nil, nil
		refuse := func(reason string, until int64) bool {
			ref = &Refusal{Reason: reason, Wait: time.Duration(max(until-now, int64(time.Millisecond)))}
			// Ask batch work to leave this capacity to us: until it frees,
			// and a grace period after, so that we are first to take it
			// (our reservation lifts the claim at once).
			if claim := until + int64(interactiveGrace); interactive && st.InteractiveWait < claim {
				st.InteractiveWait = claim
				return true
			}
			return false
		}
		if st.CoolUntil > now {
			return refuse("cooling", st.CoolUntil)
		}
		probe := false
		if st.OpenUntil != 0 {
			if st.OpenUntil > now {
				return refuse("open", st.OpenUntil)
			}
			if st.ProbeTill > now {
				return refuse("open", st.ProbeTill)
			}
			probe = true // half-open: this one call tests the model
		}
		if !interactive && st.InteractiveWait > now {
			// An interactive request waits for this model: batch work
			// takes nothing until it has been served.
			ref = &Refusal{Reason: "yielding", Wait: time.Duration(st.InteractiveWait - now)}
			return false
		}
		limReq, limTok := st.limits(m)
		usedReq, usedTok := st.used()
		if usedReq+1 > limReq {
			return refuse("requests", st.freeAt(usedReq, 1, limReq, func(b bin) int { return b.Req }))
		}
		if tokens > limTok {
			// Can never fit at the current scale: wait for the limit to recover.
			return refuse("tokens", now+int64(time.Minute))
		}
		if usedTok+tokens > limTok {
			return refuse("tokens", st.freeAt(usedTok, tokens, limTok, func(b bin) int { return b.Tok }))
		}
		sec := st.add(now, 1, tokens)
		if interactive {
			st.InteractiveWait = 0
		}
		if probe {
			st.ProbeTill = now + int64(probeLease)
		}
		res = &Reservation{Model: m, Tokens: tokens, Sec: sec, Probe: probe}
		return true
	})
	return res, ref, err
}

// Outcome is how a call ended, for Settle.
type Outcome int

// Outcomes.
const (
	Succeeded   Outcome = iota
	Throttled           // 429: cooldown, and the limit adapts down
	NotReady            // the model is not ready: cooldown only, the limit stands
	Abandoned           // we gave up on the call (deadline, shutdown): no mark against the model
	ServerError         // 5xx, timeout: counts towards the breaker
	ClientError         // the request was wrong; the model is fine
)

// Settle returns the unused part of a reservation and records the outcome.
// used is the quota tokens the call really consumed. Successes are recorded
// locally and written with the next update; throttles and errors are
// written at once, since every replica must see them now.
func (s *Shared) Settle(ctx context.Context, r *Reservation, used int, outcome Outcome, retryHint time.Duration) error {
	m := r.Model
	if (outcome == Succeeded || outcome == ClientError) && !r.Probe {
		v, _ := s.slots.LoadOrStore(stateKey(m.ID), &slot{})
		sl := v.(*slot)
		sl.qmu.Lock()
		sl.pending = append(sl.pending, refund{sec: r.Sec, tok: r.Tokens - used})
		sl.qmu.Unlock()
		return nil
	}
	if outcome == Abandoned && !r.Probe {
		return nil // nothing to give back (the call may have used it all), nothing to record
	}
	return s.update(ctx, m, func(st *modelState, now int64) bool {
		// A throttled call was not accepted by Bedrock: it leaves the window,
		// which then counts what the model really took. One throttled in the
		// middle of its stream (used > 0) was accepted, and stays.
		refundReq := 0
		if (outcome == Throttled || outcome == NotReady) && used == 0 {
			refundReq = 1
		}
		st.refund(r.Sec, refundReq, r.Tokens-used)
		if r.Probe {
			st.ProbeTill = 0
		}
		switch outcome {
		case Succeeded, ClientError:
			st.mark(r.Sec, 1, 0)
			if r.Probe {
				// The model answered: close, and judge it afresh from now.
				st.OpenUntil, st.Since = 0, now/int64(time.Second)
			}
			st.succeeded(m, now, 1)
		case Throttled, NotReady:
			st.cool(now, m.Cooldown(), retryHint)
			if outcome == NotReady {
				break // not a quota signal: the limit stands
			}
			// Multiplicative decrease, once per cooldown: a burst of 429s
			// from one overload is one signal, not many. The window says
			// how many requests the model really took in the last minute,
			// so the new limit goes just under that, but never below half
			// the old one: a short storm must not flatten the limit.
			if now-st.LastDecrease >= int64(max(m.Cooldown(), time.Second)) {
				usedReq, _ := st.used()
				observed := 0.95 * float64(usedReq) / float64(m.RequestsPerMinute)
				st.Scale = math.Max(minScale, math.Max(st.Scale*0.5, math.Min(st.Scale*decreaseFactor, observed)))
				st.LastDecrease = now
			}
		case ServerError:
			st.mark(r.Sec, 0, 1)
			if r.Probe || (st.OpenUntil == 0 && st.failing(now)) {
				st.OpenUntil = now + int64(breakerOpenFor)
			}
		}
		return true
	})
}

// cool keeps every replica off the model for its cooldown or the service's
// retry hint, whichever is longer; a cooldown is only ever extended.
func (st *modelState) cool(now int64, cooldown, hint time.Duration) {
	st.CoolUntil = max(st.CoolUntil, now+int64(max(cooldown, hint)))
}

// mark counts settled calls in second sec, if it is still in the window.
func (st *modelState) mark(sec int64, ok, errs int) {
	if b := st.binAt(sec); b != nil {
		b.Ok += ok
		b.Err += errs
	}
}

// failing reports whether the calls of the breaker's window fail at a rate
// that opens it: enough errors to mean something, and too large a share.
func (st *modelState) failing(now int64) bool {
	from := max(now/int64(time.Second)-breakerWindow+1, st.Since)
	ok, errs := 0, 0
	for _, b := range st.Bins {
		if b.Sec >= from {
			ok += b.Ok
			errs += b.Err
		}
	}
	return errs >= breakerMinErrors && float64(errs) >= breakerErrorRate*float64(ok+errs)
}

// succeeded records n successful calls: the limit creeps back up
// (additive increase) while it is what holds us back and not within a
// minute of the last decrease: +5% of the limit per minute of full use.
func (st *modelState) succeeded(m Model, now int64, n int) {
	limReq, _ := st.limits(m)
	usedReq, _ := st.used()
	if now-st.LastDecrease > int64(time.Minute) && float64(usedReq) >= 0.9*float64(limReq) {
		st.Scale = math.Min(1, st.Scale+0.05*float64(n)/float64(limReq))
	}
}

// applyPending folds this process's recorded successes into st.
func applyPending(st *modelState, m Model, now int64, pending []refund) bool {
	if len(pending) == 0 {
		return false
	}
	for _, r := range pending {
		st.refund(r.sec, 0, r.tok)
		st.mark(r.sec, 1, 0)
	}
	st.succeeded(m, now, len(pending))
	return true
}

// Snapshot is a model's state for metrics and tests.
type Snapshot struct {
	Requests, Tokens int // still available in the window
	Scale            float64
	CoolingFor       time.Duration
	BreakerOpen      bool // refusing calls now (open, or its half-open probe is out)
}

// Snapshot reads m's state as every replica sees it, without changing it.
// This process's successes not yet written are not in it: their unused
// tokens show as taken until its next write.
func (s *Shared) Snapshot(ctx context.Context, m Model) (Snapshot, error) {
	st, _, err := s.read(ctx, stateKey(m.ID))
	if err != nil {
		return Snapshot{}, fmt.Errorf("read state of %s: %w", m.ID, err)
	}
	now := s.clock.Now().UnixNano()
	st.prune(now)
	limReq, limTok := st.limits(m)
	usedReq, usedTok := st.used()
	return Snapshot{Requests: limReq - usedReq, Tokens: limTok - usedTok, Scale: st.Scale,
		CoolingFor: time.Duration(max(st.CoolUntil-now, 0)), BreakerOpen: st.OpenUntil > now || (st.OpenUntil != 0 && st.ProbeTill > now)}, nil
}
