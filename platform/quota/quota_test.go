package quota_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

// replicas are two replicas of a role, each with its own NATS connection,
// sharing one limits bucket and one clock.
type replicas struct {
	a, b  *quota.Store
	clock *testenv.Clock
}

// onBoth runs test on one NATS server and on a three-node cluster with
// the bucket replicated three times, where compare-and-set conflicts
// come back with another error code; the replicas are on connections of
// their own (on the cluster, on different nodes).
func onBoth(t *testing.T, ttl time.Duration, test func(t *testing.T, r replicas)) {
	testenv.OnEachTopology(t, func(t *testing.T, b *testenv.Bus) {
		test(t, open(t, b.Client(t, 0), b.Client(t, 1), b.Replicas, ttl))
	})
}

// openStore creates the limits bucket at replicas with admin rights, as
// `prism setup` does, and opens the store on it as a role does.
func openStore(t testing.TB, js jetstream.JetStream, replicas int, cfg quota.Config) *quota.Store {
	t.Helper()
	ctx := context.Background()
	if err := jsbind.CreateKeyValues(ctx, js, quota.BucketConfig(cfg.Bucket, replicas)); err != nil {
		t.Fatal(err)
	}
	if err := jsbind.CreateStreams(ctx, js, quota.UsageStreamConfig(replicas)); err != nil {
		t.Fatal(err)
	}
	s, err := quota.Open(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A role started before `prism setup` is told what is missing and what
// to run.
func TestOpenWithoutSetupNamesTheBucket(t *testing.T) {
	_, _, js := testenv.NATS(t)
	_, err := quota.Open(context.Background(), js, quota.Config{})
	if !errors.Is(err, jsbind.ErrNotSetUp) || !strings.Contains(err.Error(), quota.Bucket) || !strings.Contains(err.Error(), "prism setup") {
		t.Fatalf("open before setup: %v; want a not-set-up error naming %s and prism setup", err, quota.Bucket)
	}
}

func open(t *testing.T, a, b jetstream.JetStream, n int, ttl time.Duration) replicas {
	t.Helper()
	r := replicas{clock: testenv.NewClock()}
	for _, p := range []struct {
		js jetstream.JetStream
		s  **quota.Store
	}{{a, &r.a}, {b, &r.b}} {
		*p.s = openStore(t, p.js, n, quota.Config{LeaseTTL: ttl, Now: r.clock.Now})
	}
	return r
}

// race runs n calls of try at once, alternating between the replicas,
// and returns how many succeeded; every refusal must be *Exceeded of
// limit.
func race(t *testing.T, r replicas, n int, limit quota.Limit, try func(s *quota.Store) error) (ok int) {
	t.Helper()
	var wg sync.WaitGroup
	var admitted atomic.Int64
	errs := make(chan error, n)
	for i := range n {
		s := r.a
		if i%2 == 1 {
			s = r.b
		}
		wg.Go(func() {
			err := try(s)
			var ex *quota.Exceeded
			switch {
			case err == nil:
				admitted.Add(1)
			case !errors.As(err, &ex) || ex.Limit != limit:
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("want a refusal of %s, got %v", limit, err)
	}
	return int(admitted.Load())
}

func exceeded(t *testing.T, err error, limit quota.Limit) *quota.Exceeded {
	t.Helper()
	var ex *quota.Exceeded
	if !errors.As(err, &ex) || ex.Limit != limit {
		t.Fatalf("want a refusal of %s, got %v", limit, err)
	}
	return ex
}

// A replicated bucket reports a compare-and-set conflict with a write
// still in flight on the same key as ErrKeyRevisionMismatch alone (code
// 10164), not as ErrKeyExists: Conflict knows both.
func TestConflictOnACluster(t *testing.T) {
	ctx := context.Background()
	js := testenv.NATSCluster(t, 3)
	kv, err := js[0].CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cas", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, "k", []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	kinds := map[string]int{}
	for round := 0; round < 50 && kinds["mismatch only"] == 0; round++ {
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				next, err := kv.Update(ctx, "k", []byte("x"), rev)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					rev = next
				case !quota.Conflict(err):
					t.Errorf("not a conflict: %v", err)
				case errors.Is(err, jetstream.ErrKeyExists):
					kinds["key exists"]++
				default:
					kinds["mismatch only"]++
				}
			})
		}
		wg.Wait()
		if e, err := kv.Get(ctx, "k"); err == nil {
			rev = e.Revision()
		}
	}
	if kinds["mismatch only"] == 0 {
		t.Fatalf("no conflict reported as ErrKeyRevisionMismatch alone in 50 rounds: %v", kinds)
	}
	t.Logf("conflicts: %v", kinds)
}

// Uploads over the per-minute limit, raced from two replicas, are refused
// exactly at the limit, with the time until the window frees a place;
// the window slides, and a cancelled upload gives its place back.
func TestUploadsPerMinuteHoldAcrossReplicas(t *testing.T) {
	onBoth(t, 0, func(t *testing.T, r replicas) {
		ctx := context.Background()
		const limit = 10
		lim := quota.Limits{PerMinute: limit}
		n := 0
		admit := func(s *quota.Store) (*quota.Admission, error) {
			n++
			return s.Admit(ctx, "alice", quota.Doc{ID: "doc-" + itoa(n), Run: 1}, lim, nil)
		}
		var mu sync.Mutex
		if got := race(t, r, 3*limit, quota.LimitUploads, func(s *quota.Store) error {
			mu.Lock()
			n++
			doc := quota.Doc{ID: "doc-" + itoa(n), Run: 1}
			mu.Unlock()
			_, err := s.Admit(ctx, "alice", doc, lim, nil)
			return err
		}); got != limit {
			t.Fatalf("%d uploads admitted in one minute, want %d", got, limit)
		}
		_, err := admit(r.b)
		if ex := exceeded(t, err, quota.LimitUploads); ex.RetryAfter != quota.Window*time.Second || ex.Used != limit || ex.Max != limit {
			t.Fatalf("refusal %+v: want %d of %d used, free in %ds", ex, limit, limit, quota.Window)
		}
		// Another owner has a window of its own.
		if _, err := r.a.Admit(ctx, "bob", quota.Doc{ID: "bob-1", Run: 1}, lim, nil); err != nil {
			t.Fatalf("bob refused for alice's uploads: %v", err)
		}
		r.clock.Add(30 * time.Second)
		_, err = admit(r.a)
		if ex := exceeded(t, err, quota.LimitUploads); ex.RetryAfter != (quota.Window-30)*time.Second {
			t.Fatalf("30 s later: free in %s, want %ds", ex.RetryAfter, quota.Window-30)
		}
		late, err := admit(r.a)
		if err == nil {
			t.Fatal("admitted over the limit")
		}
		r.clock.Add((quota.Window - 30) * time.Second)
		if late, err = admit(r.a); err != nil {
			t.Fatalf("a minute later: %v", err)
		}
		if got := race(t, r, 2*limit, quota.LimitUploads, func(s *quota.Store) error {
			_, err := s.Admit(ctx, "alice", quota.Doc{ID: "x", Run: 1}, lim, nil)
			return err
		}); got != limit-1 {
			t.Fatalf("%d admitted in the new minute besides one, want %d", got, limit-1)
		}
		if err := late.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := admit(r.b); err != nil {
			t.Fatalf("after a cancelled upload: %v", err)
		}
		if _, err := admit(r.b); err == nil {
			t.Fatal("a cancelled upload gave back two places")
		}
	})
}

// readModel stands for the documents table: what the projector has seen
// of each document run, and whether it is final.
type readModel struct {
	mu    sync.Mutex
	final map[quota.Doc]bool // projected runs; true once analyzed or failed
}

func (m *readModel) inFlight(_ context.Context, _ string, recent []quota.Doc) (int, []quota.Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, final := range m.final {
		if !final {
			n++
		}
	}
	var unseen []quota.Doc
	for _, d := range recent {
		if _, ok := m.final[d]; !ok {
			unseen = append(unseen, d)
		}
	}
	return n + len(unseen), unseen, nil
}

func (m *readModel) project(d quota.Doc, final bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.final[d] = final
}

// Documents in flight, raced from two replicas before the projector has
// seen any of them, are refused exactly at the limit: the submissions it
// has not seen count too. A document that finishes frees a place, and so
// does a cancelled submission.
func TestDocumentsInFlightHoldAcrossReplicas(t *testing.T) {
	onBoth(t, 0, func(t *testing.T, r replicas) {
		ctx := context.Background()
		const limit = 5
		lim := quota.Limits{InFlight: limit}
		rm := &readModel{final: map[quota.Doc]bool{}}
		var mu sync.Mutex
		var admitted []quota.Doc
		n := 0
		if got := race(t, r, 3*limit, quota.LimitInFlight, func(s *quota.Store) error {
			mu.Lock()
			n++
			doc := quota.Doc{ID: "doc-" + itoa(n), Run: 1}
			mu.Unlock()
			_, err := s.Admit(ctx, "alice", doc, lim, rm.inFlight)
			if err == nil {
				mu.Lock()
				admitted = append(admitted, doc)
				mu.Unlock()
			}
			return err
		}); got != limit {
			t.Fatalf("%d documents admitted in flight, want %d", got, limit)
		}
		// The projector catches up: still in flight.
		for _, d := range admitted {
			rm.project(d, false)
		}
		_, err := r.a.Admit(ctx, "alice", quota.Doc{ID: "more", Run: 1}, lim, rm.inFlight)
		exceeded(t, err, quota.LimitInFlight)
		// One is analyzed: one place.
		rm.project(admitted[0], true)
		next := quota.Doc{ID: "next", Run: 1}
		a, err := r.b.Admit(ctx, "alice", next, lim, rm.inFlight)
		if err != nil {
			t.Fatalf("after one finished: %v", err)
		}
		_, err = r.a.Admit(ctx, "alice", quota.Doc{ID: "more", Run: 1}, lim, rm.inFlight)
		exceeded(t, err, quota.LimitInFlight)
		// A re-analysis of the finished one is in flight until its new run
		// is projected, though its row says analyzed.
		if err := a.Cancel(ctx); err != nil {
			t.Fatal(err)
		}
		again := quota.Doc{ID: admitted[0].ID, Run: 2}
		if _, err := r.a.Admit(ctx, "alice", again, lim, rm.inFlight); err != nil {
			t.Fatalf("after a cancelled submission: %v", err)
		}
		_, err = r.b.Admit(ctx, "alice", next, lim, rm.inFlight)
		exceeded(t, err, quota.LimitInFlight)
	})
}

// Leases raced from two replicas are granted exactly up to the limit; a
// released lease frees its place at once, a dead replica's leases free
// theirs once they expire unrefreshed, and its late refresh is told the
// lease is lost.
func TestLeasesHoldAcrossReplicasAndExpire(t *testing.T) {
	const ttl = 30 * time.Second
	onBoth(t, ttl, func(t *testing.T, r replicas) {
		ctx := context.Background()
		const limit = 3
		var mu sync.Mutex
		held := map[*quota.Store][]*quota.Lease{}
		if got := race(t, r, 3*limit, "streams", func(s *quota.Store) error {
			l, err := s.Acquire(ctx, "streams", "alice", limit)
			if err == nil {
				mu.Lock()
				held[s] = append(held[s], l)
				mu.Unlock()
			}
			return err
		}); got != limit {
			t.Fatalf("%d leases granted, want %d", got, limit)
		}
		_, err := r.a.Acquire(ctx, "streams", "alice", limit)
		if ex := exceeded(t, err, "streams"); ex.RetryAfter != ttl {
			t.Fatalf("refusal %+v: want a place at the latest in %s", ex, ttl)
		}
		if _, err := r.a.Acquire(ctx, "exports", "alice", limit); err != nil {
			t.Fatalf("another kind is limited apart: %v", err)
		}
		if _, err := r.a.Acquire(ctx, "streams", "bob", limit); err != nil {
			t.Fatalf("another owner is limited apart: %v", err)
		}
		// Released on either replica, free on the other.
		for _, ls := range held {
			for _, l := range ls {
				if err := l.Release(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		live, err := r.a.Acquire(ctx, "streams", "alice", limit)
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		var dead []*quota.Lease
		for range limit - 1 {
			l, err := r.b.Acquire(ctx, "streams", "alice", limit)
			if err != nil {
				t.Fatalf("after release: %v", err)
			}
			dead = append(dead, l)
		}
		// Replica b dies: its leases are not refreshed, a's are.
		r.clock.Add(ttl / 2)
		if err := live.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		_, err = r.a.Acquire(ctx, "streams", "alice", limit)
		exceeded(t, err, "streams")
		r.clock.Add(ttl/2 + time.Millisecond)
		if err := live.Refresh(ctx); err != nil {
			t.Fatalf("a lease refreshed within its TTL: %v", err)
		}
		for _, l := range dead {
			if err := l.Refresh(ctx); !errors.Is(err, quota.ErrLeaseLost) {
				t.Fatalf("refresh of an expired lease: %v, want ErrLeaseLost", err)
			}
		}
		for range dead {
			if _, err := r.a.Acquire(ctx, "streams", "alice", limit); err != nil {
				t.Fatalf("the dead replica's leases did not free: %v", err)
			}
		}
		_, err = r.a.Acquire(ctx, "streams", "alice", limit)
		exceeded(t, err, "streams")
	})
}

// Keep refreshes a lease for as long as it is held, in real time; a
// lease nobody keeps expires.
func TestKeptLeaseOutlivesItsTTL(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	const ttl = 300 * time.Millisecond
	s := openStore(t, js, 1, quota.Config{LeaseTTL: ttl})
	kept, err := s.Acquire(ctx, "exports", "alice", 2)
	if err != nil {
		t.Fatal(err)
	}
	lost := make(chan struct{})
	kept.Keep(func() { close(lost) })
	if _, err := s.Acquire(ctx, "exports", "alice", 2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * ttl)
	if _, err := s.Acquire(ctx, "exports", "alice", 2); err != nil {
		t.Fatalf("the unkept lease did not expire: %v", err)
	}
	_, err = s.Acquire(ctx, "exports", "alice", 2)
	exceeded(t, err, "exports")
	select {
	case <-lost:
		t.Fatal("a kept lease was lost")
	default:
	}
	if err := kept.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "exports", "alice", 2); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// The daily budget counts each delivery of a document run once, however
// often its count is written; refuses its owner once spent, until
// midnight UTC, and nobody else; and renews the next day. Spends raced
// from two replicas add up exactly.
func TestDailyTokenBudget(t *testing.T) {
	onBoth(t, 0, func(t *testing.T, r replicas) {
		ctx := context.Background()
		a, b := r.a.Budget(1000), r.b.Budget(1000)
		for range 2 { // a retried count
			if err := a.Spend(ctx, "alice", "doc-1", 1, 1, 600); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Spend(ctx, "alice", "doc-1", 1, 0, 600); err != nil { // delivery unknown: the first
			t.Fatal(err)
		}
		if used, err := b.Used(ctx, "alice"); err != nil || used != 600 {
			t.Fatalf("used %d (%v), want 600: a count was repeated", used, err)
		}
		if err := b.Check(ctx, "alice"); err != nil {
			t.Fatalf("within budget: %v", err)
		}
		// A redelivery counts what it spent itself.
		if err := b.Spend(ctx, "alice", "doc-1", 1, 2, 300); err != nil {
			t.Fatal(err)
		}
		if err := a.Spend(ctx, "alice", "doc-2", 1, 1, 100); err != nil {
			t.Fatal(err)
		}
		err := b.Check(ctx, "alice")
		now := r.clock.Now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		if ex := exceeded(t, err, quota.LimitTokens); ex.Used != 1000 || ex.Max != 1000 || ex.RetryAfter != midnight.Sub(r.clock.Now()) {
			t.Fatalf("refusal %+v: want 1000 of 1000, renewing in %s", ex, midnight.Sub(r.clock.Now()))
		}
		if err := a.Check(ctx, "bob"); err != nil {
			t.Fatalf("bob refused for alice's spending: %v", err)
		}
		r.clock.Add(midnight.Sub(r.clock.Now()))
		if err := a.Check(ctx, "alice"); err != nil {
			t.Fatalf("the next day: %v", err)
		}
		// Raced spends of distinct runs from both replicas add up.
		var runs sync.WaitGroup
		for i := range 20 {
			bud := a
			if i%2 == 1 {
				bud = b
			}
			runs.Go(func() {
				if err := bud.Spend(ctx, "alice", "doc-"+itoa(i), 1, 1, 7); err != nil {
					t.Error(err)
				}
			})
		}
		runs.Wait()
		if used, err := a.Used(ctx, "alice"); err != nil || used != 140 {
			t.Fatalf("20 raced spends of 7 tokens counted %d (%v)", used, err)
		}
		// Unlimited counts nothing and refuses nothing.
		none := r.a.Budget(0)
		if err := none.Spend(ctx, "carol", "doc-1", 1, 1, 1<<40); err != nil || none.Check(ctx, "carol") != nil {
			t.Fatalf("an unlimited budget refused or failed: %v", err)
		}
	})
}

// The API refuses by the budget the analyzers publish: none published is
// unlimited; CheckPublished refuses as Check by it does.
func TestPublishedBudget(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	s := openStore(t, js, 1, quota.Config{})
	if b, err := s.PublishedBudget(ctx); err != nil || b.Limit() != 0 {
		t.Fatalf("nothing published: %v, %v", b, err)
	}
	if err := s.Budget(5000).Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := s.PublishedBudget(ctx); err != nil || b.Limit() != 5000 {
		t.Fatalf("published 5000, read %v, %v", b, err)
	}
	// CheckPublished is Check by the published budget.
	if err := s.Budget(5000).Spend(ctx, "alice", "doc-1", 1, 1, 5000); err != nil {
		t.Fatal(err)
	}
	if ex := exceeded(t, s.CheckPublished(ctx, "alice"), quota.LimitTokens); ex.Used != 5000 || ex.Max != 5000 {
		t.Fatalf("alice's refusal %+v, want 5000 of 5000", ex)
	}
	if err := s.CheckPublished(ctx, "bob"); err != nil {
		t.Fatalf("bob refused: %v", err)
	}
	if err := s.Budget(0).Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckPublished(ctx, "alice"); err != nil {
		t.Fatalf("refused by an unlimited budget: %v", err)
	}
}

// Owner ids that are not ids never reach a key.
func TestOwnerMustBeAnID(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	s := openStore(t, js, 1, quota.Config{})
	for _, owner := range []string{"", "a.b", "*", ">", "a b"} {
		if _, err := s.Acquire(ctx, "streams", owner, 1); err == nil {
			t.Errorf("owner %q accepted", owner)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
