package accounts_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/persist/persisttest"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/nats-io/nats.go/jetstream"
)

// sessionEnv is two API replicas' session stores over one NATS and one
// database, on a clock the test moves.
type sessionEnv struct {
	js         jetstream.JetStream
	users      *accounts.Users
	one, two   *accounts.Sessions
	clock      *testenv.Clock
	alice, bob accounts.User
}

func newSessionEnv(t *testing.T, idle, maxLife time.Duration) *sessionEnv {
	t.Helper()
	return newSessionEnvOn(t, testenv.Topologies()[0].Start(t), idle, maxLife)
}

// newSessionEnvOn is newSessionEnv on b, each replica on its own
// connection (on a cluster, to its own node).
func newSessionEnvOn(t *testing.T, b *testenv.Bus, idle, maxLife time.Duration) *sessionEnv {
	t.Helper()
	pool := persisttest.DB(t)
	e := &sessionEnv{js: b.Client(t, 0), users: accounts.NewUsers(pool, accounts.DefaultParams()), clock: testenv.NewClock()}
	e.alice, e.bob = addUser(t, e.users, "alice@example.com"), addUser(t, e.users, "bob@example.com")
	cfg := accounts.SessionConfig{Idle: idle, Max: maxLife, Now: e.clock.Now, Replicas: b.Replicas}
	if err := jsbind.CreateKeyValues(context.Background(), e.js, accounts.SessionsBucketConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	for i, s := range []**accounts.Sessions{&e.one, &e.two} {
		var err error
		if *s, err = accounts.OpenSessions(context.Background(), b.Client(t, i), e.users, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *sessionEnv) create(t *testing.T, s *accounts.Sessions, u accounts.User) string {
	t.Helper()
	secret, sess, err := s.Create(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != accounts.SessionSecretLen || sess.UserID != u.ID || sess.ID == secret {
		t.Fatalf("Create = %q, %+v", secret, sess)
	}
	return secret
}

// valid asserts that s honours secret as u's session.
func valid(t *testing.T, s *accounts.Sessions, secret string, u accounts.User, why string) accounts.Session {
	t.Helper()
	got, sess, err := s.Lookup(context.Background(), secret)
	if err != nil || got.ID != u.ID {
		t.Fatalf("%s: Lookup = %+v, %v; want user %s", why, got, err, u.ID)
	}
	return sess
}

// ended asserts that s refuses secret.
func ended(t *testing.T, s *accounts.Sessions, secret, why string) {
	t.Helper()
	if u, _, err := s.Lookup(context.Background(), secret); !errors.Is(err, accounts.ErrInvalidSession) {
		t.Fatalf("%s: Lookup = %+v, %v; want ErrInvalidSession", why, u, err)
	} else {
		t.Logf("%s: %v", why, err)
	}
}

// TestSessionsAreSharedByReplicas: a session begun on one replica works
// on the other, and ending it on either ends it on both. The bucket holds
// its hash, never the secret.
func TestSessionsAreSharedByReplicas(t *testing.T) {
	e := newSessionEnv(t, time.Hour, 24*time.Hour)
	ctx := context.Background()
	secret := e.create(t, e.one, e.alice)
	sess := valid(t, e.two, secret, e.alice, "on the other replica")
	valid(t, e.one, secret, e.alice, "on the first")

	kv, err := e.js.KeyValue(ctx, accounts.SessionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		entry, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(k, secret) || strings.Contains(string(entry.Value()), secret) {
			t.Fatalf("the bucket holds the secret in %s", k)
		}
	}
	if !strings.Contains(strings.Join(keys, " "), sess.ID) {
		t.Fatalf("keys %v do not name the session's hash %s", keys, sess.ID)
	}

	if err := e.two.End(ctx, secret); err != nil {
		t.Fatal(err)
	}
	ended(t, e.one, secret, "ended on the other replica")
	ended(t, e.two, secret, "ended here")
	if err := e.one.End(ctx, secret); err != nil {
		t.Errorf("ending twice: %v", err)
	}
	ended(t, e.one, "not a session", "malformed")
	ended(t, e.one, strings.Repeat("A", accounts.SessionSecretLen), "unknown")

	// Every sign-in makes a new secret.
	if a, b := e.create(t, e.one, e.alice), e.create(t, e.one, e.alice); a == b {
		t.Fatal("two sign-ins got the same secret")
	}
}

// sessionRevision is the bucket revision of the session's record.
func (e *sessionEnv) sessionRevision(t *testing.T, sess accounts.Session) uint64 {
	t.Helper()
	kv, err := e.js.KeyValue(context.Background(), accounts.SessionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(context.Background(), "s."+sess.ID)
	if err != nil {
		t.Fatal(err)
	}
	return entry.Revision()
}

// TestIdleExpiry: a session ends after the idle lifetime without use;
// use keeps it alive, and is written at most once a minute.
func TestIdleExpiry(t *testing.T) {
	e := newSessionEnv(t, time.Hour, 24*time.Hour)
	secret := e.create(t, e.one, e.alice)
	sess := valid(t, e.one, secret, e.alice, "new")
	rev := e.sessionRevision(t, sess)

	e.clock.Add(30 * time.Second)
	for range 5 {
		valid(t, e.two, secret, e.alice, "within the minute")
	}
	if got := e.sessionRevision(t, sess); got != rev {
		t.Fatalf("uses within a minute wrote the session (revision %d, was %d)", got, rev)
	}
	e.clock.Add(31 * time.Second)
	sess = valid(t, e.two, secret, e.alice, "after a minute")
	if got := e.sessionRevision(t, sess); got == rev {
		t.Fatal("a use after a minute did not refresh the session")
	}
	if want := e.clock.Now().Add(time.Hour); !sess.ExpiresAt.Equal(want) {
		t.Fatalf("expires at %s, want %s (an idle hour from now)", sess.ExpiresAt, want)
	}

	// Used within each idle hour, it lives past the first hour.
	e.clock.Add(59 * time.Minute)
	valid(t, e.one, secret, e.alice, "59 minutes after the last use")
	e.clock.Add(time.Hour)
	ended(t, e.one, secret, "an idle hour after the last use")
	e.clock.Add(-time.Hour)
	ended(t, e.two, secret, "once expired, it is gone")
}

// TestConcurrentRefreshesOnEachTopology: replicas using one session at
// once when its refresh is due all honour it; the refreshes that lose the
// compare-and-set (on a cluster, as ErrKeyRevisionMismatch while the
// winner is in flight) are not errors, and the session stays alive.
func TestConcurrentRefreshesOnEachTopology(t *testing.T) {
	testenv.OnEachTopology(t, func(t *testing.T, b *testenv.Bus) {
		e := newSessionEnvOn(t, b, time.Hour, 24*time.Hour)
		secret := e.create(t, e.one, e.alice)
		for range 10 {
			e.clock.Add(61 * time.Second) // every use now refreshes
			var wg sync.WaitGroup
			for i := range 6 {
				wg.Go(func() {
					s := []*accounts.Sessions{e.one, e.two}[i%2]
					if u, _, err := s.Lookup(context.Background(), secret); err != nil || u.ID != e.alice.ID {
						t.Errorf("Lookup during concurrent refreshes = %+v, %v", u, err)
					}
				})
			}
			wg.Wait()
		}
		e.clock.Add(59 * time.Minute)
		valid(t, e.two, secret, e.alice, "within an idle hour of the last refresh")
	})
}

// TestAbsoluteExpiry: however often it is used, a session ends at its
// absolute lifetime.
func TestAbsoluteExpiry(t *testing.T) {
	e := newSessionEnv(t, time.Hour, 3*time.Hour)
	secret := e.create(t, e.one, e.alice)
	for range 5 {
		e.clock.Add(35 * time.Minute)
		valid(t, e.two, secret, e.alice, "used every 35 minutes")
	}
	e.clock.Add(5*time.Minute - time.Second)
	valid(t, e.one, secret, e.alice, "a second before the absolute lifetime")
	e.clock.Add(time.Second)
	ended(t, e.one, secret, "at the absolute lifetime")
}

// TestEndAll: every session of one user ends, from either replica or from
// outside the API (the prism command), and no one else's.
func TestEndAll(t *testing.T) {
	e := newSessionEnv(t, time.Hour, 24*time.Hour)
	ctx := context.Background()
	a1, a2, a3 := e.create(t, e.one, e.alice), e.create(t, e.two, e.alice), e.create(t, e.one, e.alice)
	b := e.create(t, e.one, e.bob)
	n, err := e.two.EndAll(ctx, e.alice.ID)
	if err != nil || n != 3 {
		t.Fatalf("EndAll = %d, %v; want 3", n, err)
	}
	for _, s := range []string{a1, a2, a3} {
		ended(t, e.one, s, "alice's after EndAll")
	}
	valid(t, e.one, b, e.bob, "bob's after alice's EndAll")

	n, err = accounts.EndUserSessions(ctx, e.js, "", e.bob.ID)
	if err != nil || n != 1 {
		t.Fatalf("EndUserSessions = %d, %v; want 1", n, err)
	}
	ended(t, e.two, b, "bob's after EndUserSessions")
	if n, err := accounts.EndUserSessions(ctx, e.js, "no_such_bucket", e.bob.ID); err != nil || n != 0 {
		t.Fatalf("without a bucket: %d, %v", n, err)
	}
}

// TestDisabledUserSessionRefused: a session of a disabled user is refused
// at once, before anything ends it.
func TestDisabledUserSessionRefused(t *testing.T) {
	e := newSessionEnv(t, time.Hour, 24*time.Hour)
	secret := e.create(t, e.one, e.alice)
	if _, err := e.users.Disable(context.Background(), e.alice.Email); err != nil {
		t.Fatal(err)
	}
	ended(t, e.two, secret, "user disabled")
}

func TestCSRFToken(t *testing.T) {
	e := newSessionEnv(t, time.Hour, 24*time.Hour)
	a, b := e.create(t, e.one, e.alice), e.create(t, e.one, e.alice)
	ta := accounts.CSRFToken(a)
	if !accounts.CheckCSRF(a, ta) || accounts.CheckCSRF(b, ta) || accounts.CheckCSRF(a, "") || ta == accounts.CSRFToken(b) {
		t.Fatal("a CSRF token must match its own session only")
	}
	if strings.Contains(ta, a) {
		t.Fatal("the CSRF token shows the secret")
	}
}

// TestSessionLifetimesChecked: an idle lifetime longer than the absolute
// one is a configuration mistake, refused.
func TestSessionLifetimesChecked(t *testing.T) {
	_, _, js := testenv.NATS(t)
	_, err := accounts.OpenSessions(context.Background(), js, nil, accounts.SessionConfig{Idle: 2 * time.Hour, Max: time.Hour})
	if err == nil {
		t.Fatal("idle > max accepted")
	}
}
