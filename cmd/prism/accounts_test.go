package main

import (
	"bytes"
	"context"
	"errors"
	"github.com/aiprism/prism/platform/jsbind"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/persist/persisttest"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	alicePassword = "alice's long passphrase"
	bobPassword   = "bob's long passphrase!"
)

// cli runs the prism command in this process against a migrated
// database. Its environment names no NATS (nothing listens at the
// default address) unless withNATS adds one: the account commands need
// PostgreSQL alone, but those that end sessions.
type cli struct {
	t      *testing.T
	pool   *pgxpool.Pool
	env    map[string]string
	users  *accounts.Users
	tokens *accounts.Tokens
}

func newCLI(t *testing.T) *cli {
	pool := persisttest.DB(t)
	return &cli{t: t, pool: pool, env: map[string]string{"DATABASE_URL": pool.Config().ConnString()},
		users: accounts.NewUsers(pool, accounts.DefaultParams()), tokens: accounts.NewTokens(pool)}
}

// withNATS starts a NATS server for the commands that end sessions and
// returns its JetStream.
func (c *cli) withNATS() jetstream.JetStream {
	srv, _, js := testenv.NATS(c.t)
	c.env["NATS_URL"] = srv.ClientURL()
	return js
}

// run runs prism with args and returns what it wrote.
func (c *cli) run(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, config.MapEnv(c.env), &out, &errb)
	return out.String(), errb.String(), err
}

// ok runs prism with args and fails the test if it fails.
func (c *cli) ok(args ...string) (stdout, stderr string) {
	c.t.Helper()
	stdout, stderr, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("prism %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout, stderr
}

// file writes content to a new private file and returns its path.
func (c *cli) file(content string) string {
	c.t.Helper()
	path := filepath.Join(c.t.TempDir(), "password")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func (c *cli) signsIn(email, password string) bool {
	c.t.Helper()
	_, err := c.users.Authenticate(context.Background(), email, password)
	if err != nil && !errors.Is(err, accounts.ErrInvalidCredentials) {
		c.t.Fatal(err)
	}
	return err == nil
}

func TestUserCommands(t *testing.T) {
	c := newCLI(t)
	c.withNATS() // for passwd
	stdout, stderr := c.ok("user", "add", "Alice@Example.com", "--admin", "--name", "Alice A", "--password-file", c.file(alicePassword+"\n"))
	id := strings.TrimSuffix(stdout, "\n")
	if err := streams.ValidToken(id); err != nil || strings.Contains(id, "\n") {
		t.Fatalf("user add printed %q, want the new id alone: %v", stdout, err)
	}
	if !strings.Contains(stderr, "added admin alice@example.com") {
		t.Errorf("user add said %q", stderr)
	}
	if !c.signsIn("alice@example.com", alicePassword) {
		t.Fatal("alice cannot sign in with the password from the file")
	}
	if _, _, err := c.run("user", "add", "ALICE@example.com", "--password-file", c.file(bobPassword)); !errors.Is(err, accounts.ErrEmailTaken) {
		t.Errorf("second alice: %v, want ErrEmailTaken", err)
	}

	// Without a file, and stdin not a terminal: one line of stdin.
	var out, errb bytes.Buffer
	if err := runUser(context.Background(), []string{"add", "bob@example.com"}, config.MapEnv(c.env),
		strings.NewReader(bobPassword+"\nignored\n"), &out, &errb); err != nil {
		t.Fatalf("user add from stdin: %v (%s)", err, errb.String())
	}
	if !c.signsIn("bob@example.com", bobPassword) {
		t.Fatal("bob cannot sign in with the password from stdin")
	}

	list, _ := c.ok("user", "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") ||
		!containsAll(lines[1], id, "alice@example.com", "admin", "active", "Alice A") ||
		!containsAll(lines[2], "bob@example.com", "user", "active") {
		t.Fatalf("user list:\n%s", list)
	}

	const next = "alice's next passphrase"
	c.ok("user", "passwd", "alice@example.com", "--password-file", c.file(next))
	if c.signsIn("alice@example.com", alicePassword) || !c.signsIn("alice@example.com", next) {
		t.Fatal("passwd did not replace the password")
	}
	if _, _, err := c.run("user", "passwd", "nobody@example.com", "--password-file", c.file(next)); !errors.Is(err, accounts.ErrUserNotFound) {
		t.Errorf("passwd of an unknown user: %v", err)
	}
	if _, _, err := c.run("user", "add", "carol@example.com", "--password-file", c.file("short")); !errors.Is(err, accounts.ErrPasswordPolicy) {
		t.Errorf("short password: %v", err)
	}
}

func TestUserDisableStopsSignInAndTokens(t *testing.T) {
	c := newCLI(t)
	c.withNATS()
	c.ok("user", "add", "alice@example.com", "--password-file", c.file(alicePassword))
	token, _ := c.ok("token", "create", "--user", "alice@example.com", "--name", "ci")
	_, stderr := c.ok("user", "disable", "Alice@example.com")
	if !strings.Contains(stderr, "disabled alice@example.com") {
		t.Errorf("disable said %q", stderr)
	}
	if c.signsIn("alice@example.com", alicePassword) {
		t.Error("a disabled user signed in")
	}
	if _, _, err := c.tokens.Lookup(context.Background(), strings.TrimSpace(token)); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Errorf("a disabled user's token: %v", err)
	}
	if list, _ := c.ok("user", "list"); !strings.Contains(list, "disabled") {
		t.Errorf("user list does not show the user disabled:\n%s", list)
	}
	if _, _, err := c.run("token", "create", "--user", "alice@example.com", "--name", "again"); !errors.Is(err, accounts.ErrUserDisabled) {
		t.Errorf("token for a disabled user: %v", err)
	}
}

// TestDisableAndPasswdEndSessions: prism user disable and prism user
// passwd end every session of the user in the bucket the API replicas
// share, and no one else's; without NATS they change nothing.
func TestDisableAndPasswdEndSessions(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	if _, _, err := c.run("user", "passwd", "alice@example.com", "--password-file", c.file(bobPassword)); err == nil ||
		!strings.Contains(err.Error(), "NATS") {
		t.Fatalf("passwd without NATS: %v", err)
	}
	js := c.withNATS()
	if err := jsbind.CreateKeyValues(ctx, js, accounts.SessionsBucketConfig(accounts.SessionConfig{})); err != nil {
		t.Fatal(err)
	}
	sessions, err := accounts.OpenSessions(ctx, js, c.users, accounts.SessionConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c.ok("user", "add", "alice@example.com", "--password-file", c.file(alicePassword))
	c.ok("user", "add", "bob@example.com", "--password-file", c.file(bobPassword))
	signIn := func(email string) string {
		u, err := c.users.Get(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		secret, _, err := sessions.Create(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	live := func(secret string) bool {
		_, _, err := sessions.Lookup(ctx, secret)
		if err != nil && !errors.Is(err, accounts.ErrInvalidSession) {
			t.Fatal(err)
		}
		return err == nil
	}

	a1, a2, b := signIn("alice@example.com"), signIn("alice@example.com"), signIn("bob@example.com")
	if _, stderr := c.ok("user", "passwd", "alice@example.com", "--password-file", c.file("alice's next passphrase")); !strings.Contains(stderr, "ended 2 session(s)") {
		t.Errorf("passwd said %q", stderr)
	}
	if live(a1) || live(a2) || !live(b) {
		t.Fatalf("after alice's passwd: alice's sessions live %v %v, bob's %v", live(a1), live(a2), live(b))
	}

	b2 := signIn("bob@example.com")
	if _, stderr := c.ok("user", "disable", "bob@example.com"); !strings.Contains(stderr, "ended 2 session(s)") {
		t.Errorf("disable said %q", stderr)
	}
	// Enabled again by hand, bob still has no session: they were ended,
	// not only refused.
	if _, err := c.pool.Exec(ctx, `UPDATE users SET disabled_at = NULL WHERE email = 'bob@example.com'`); err != nil {
		t.Fatal(err)
	}
	if live(b) || live(b2) {
		t.Fatal("bob's sessions outlived prism user disable")
	}
}

// TestPasswordNeverAnArgument: a password given as an argument is refused
// before anything is done, and the refusal does not repeat it.
func TestPasswordNeverAnArgument(t *testing.T) {
	c := newCLI(t)
	const secret = "hunter2hunter2hunter2"
	for _, args := range [][]string{
		{"user", "add", "alice@example.com", "--password", secret},
		{"user", "add", "alice@example.com", "--password=" + secret},
		{"user", "add", "-password", secret, "alice@example.com"},
		{"user", "passwd", "alice@example.com", "-p", secret},
	} {
		stdout, stderr, err := c.run(args...)
		if err == nil || !strings.Contains(err.Error(), "never taken as arguments") || !strings.Contains(err.Error(), "--password-file") {
			t.Errorf("prism %s: %v, want a refusal pointing at --password-file", strings.Join(args, " "), err)
		}
		if err != nil && strings.Contains(err.Error()+stdout+stderr, secret) {
			t.Errorf("prism %s: the refusal repeats the password: %v %s", strings.Join(args[:3], " "), err, stderr)
		}
	}
	// A stray positional argument might be a password: refused, not echoed.
	stdout, stderr, err := c.run("user", "add", "alice@example.com", secret)
	if err == nil || !strings.Contains(err.Error(), "takes 1 argument(s) besides flags, got 2") || strings.Contains(err.Error()+stdout+stderr, secret) {
		t.Errorf("extra argument: %v %s", err, stderr)
	}
	if users, err := c.users.List(context.Background()); err != nil || len(users) != 0 {
		t.Fatalf("users after refusals: %v, %v", users, err)
	}
}

func TestTokenCommands(t *testing.T) {
	ctx := context.Background()
	c := newCLI(t)
	c.ok("user", "add", "alice@example.com", "--password-file", c.file(alicePassword))
	stdout, stderr := c.ok("token", "create", "--user", "Alice@example.com", "--name", "ci", "--scope", "read", "--expires", "720h")
	// The token alone on stdout, so TOKEN=$(prism token create ...) works.
	token, ok := strings.CutSuffix(stdout, "\n")
	if !ok || strings.ContainsAny(token, " \n") || accounts.CheckTokenFormat(token) != nil {
		t.Fatalf("token create printed %q on stdout", stdout)
	}
	if strings.Contains(stderr, token) {
		t.Errorf("the token is on stderr too: %s", stderr)
	}
	u, tok, err := c.tokens.Lookup(ctx, token)
	if err != nil || u.Email != "alice@example.com" || !slices.Equal(tok.Scopes, []accounts.Scope{accounts.ScopeRead}) ||
		tok.ExpiresAt == nil || time.Until(*tok.ExpiresAt) < 719*time.Hour || time.Until(*tok.ExpiresAt) > 720*time.Hour {
		t.Fatalf("Lookup of the printed token: %+v, %+v, %v", u, tok, err)
	}

	for _, args := range [][]string{{"token", "list"}, {"token", "list", "--user", "alice@example.com"}} {
		list, _ := c.ok(args...)
		if !containsAll(list, tok.ID, "alice@example.com", "ci", "read", "active") ||
			strings.Contains(list, token[len(accounts.TokenPrefix):]) || strings.Contains(list, accounts.HashToken(token)) {
			t.Errorf("prism %s:\n%s", strings.Join(args, " "), list)
		}
	}

	c.ok("token", "revoke", tok.ID)
	if _, _, err := c.tokens.Lookup(ctx, token); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Fatalf("revoked token: %v", err)
	}
	if list, _ := c.ok("token", "list"); !strings.Contains(list, "revoked") {
		t.Errorf("token list does not show the revocation:\n%s", list)
	}

	var more []string
	for _, name := range []string{"a", "b"} {
		out, _ := c.ok("token", "create", "--user", "alice@example.com", "--name", name)
		more = append(more, strings.TrimSpace(out))
	}
	if _, stderr := c.ok("token", "revoke", "--user", "alice@example.com", "--all"); !strings.Contains(stderr, "revoked 2 token(s)") {
		t.Errorf("revoke --all said %q", stderr)
	}
	for _, secret := range more {
		if _, _, err := c.tokens.Lookup(ctx, secret); !errors.Is(err, accounts.ErrInvalidToken) {
			t.Errorf("token after revoke --all: %v", err)
		}
	}

	for _, args := range [][]string{
		{"token", "revoke"},
		{"token", "revoke", "--all"},
		{"token", "revoke", "--user", "alice@example.com"},
		{"token", "revoke", tok.ID, "--user", "alice@example.com"},
		{"token", "revoke", tok.ID, "--user", "alice@example.com", "--all"},
		{"token", "create", "--user", "alice@example.com"},
		{"token", "create", "--user", "alice@example.com", "--name", "x", "--scope", "admin"},
		{"token", "create", "--user", "alice@example.com", "--name", "x", "--expires", "-1h"},
		{"token", "create", "--user", "nobody@example.com", "--name", "x"},
	} {
		if stdout, _, err := c.run(args...); err == nil || stdout != "" {
			t.Errorf("prism %s: %v, stdout %q; want an error and nothing on stdout", strings.Join(args, " "), err, stdout)
		}
	}
	if _, _, err := c.run("token", "revoke", "no-such-id"); !errors.Is(err, accounts.ErrTokenNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
}

// TestMigrateBootstrapsAdmin: prism migrate creates the admin named in the
// environment once, and never overwrites that user's password later.
func TestMigrateBootstrapsAdmin(t *testing.T) {
	ctx := context.Background()
	srv, _, _ := testenv.NATS(t)
	dsn := testenv.Postgres(t)
	c := &cli{t: t}
	passwordFile := c.file(alicePassword + "\n")
	c.env = map[string]string{"DATABASE_URL": dsn, "NATS_URL": srv.ClientURL(),
		"PRISM_ADMIN_EMAIL": "Root@Example.com", "PRISM_ADMIN_PASSWORD_FILE": passwordFile}
	c.ok("migrate")
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c.users = accounts.NewUsers(pool, accounts.DefaultParams())
	u, err := c.users.Authenticate(ctx, "root@example.com", alicePassword)
	if err != nil || u.Role != accounts.RoleAdmin {
		t.Fatalf("bootstrapped admin: %+v, %v", u, err)
	}

	if err := os.WriteFile(passwordFile, []byte(bobPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("migrate")
	if !c.signsIn("root@example.com", alicePassword) || c.signsIn("root@example.com", bobPassword) {
		t.Fatal("a second migrate changed the admin's password")
	}
	if users, err := c.users.List(ctx); err != nil || len(users) != 1 {
		t.Fatalf("users after two migrations: %+v, %v", users, err)
	}

	delete(c.env, "PRISM_ADMIN_PASSWORD_FILE")
	if _, _, err := c.run("migrate"); err == nil || !strings.Contains(err.Error(), "PRISM_ADMIN_PASSWORD_FILE") {
		t.Errorf("PRISM_ADMIN_EMAIL alone: %v, want a configuration error", err)
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
