package accounts_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/persist/persisttest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tokenEnv is a migrated database with one user.
type tokenEnv struct {
	pool   *pgxpool.Pool
	users  *accounts.Users
	tokens *accounts.Tokens
	alice  accounts.User
}

func newTokenEnv(t *testing.T) tokenEnv {
	pool := persisttest.DB(t)
	users := accounts.NewUsers(pool, accounts.DefaultParams())
	return tokenEnv{pool: pool, users: users, tokens: accounts.NewTokens(pool), alice: addUser(t, users, "alice@example.com")}
}

func (e tokenEnv) create(t *testing.T, nt accounts.NewToken) (string, accounts.Token) {
	t.Helper()
	if nt.UserID == "" {
		nt.UserID = e.alice.ID
	}
	if nt.Name == "" {
		nt.Name = "ci"
	}
	if nt.Scopes == nil {
		nt.Scopes = []accounts.Scope{accounts.ScopeRead}
	}
	secret, tok, err := e.tokens.Create(context.Background(), nt)
	if err != nil {
		t.Fatal(err)
	}
	return secret, tok
}

// refused asserts that Lookup turns secret away.
func (e tokenEnv) refused(t *testing.T, secret, why string) {
	t.Helper()
	if u, tok, err := e.tokens.Lookup(context.Background(), secret); !errors.Is(err, accounts.ErrInvalidToken) {
		t.Errorf("%s: Lookup = %+v, %+v, %v; want ErrInvalidToken", why, u, tok, err)
	}
}

func TestTokenFormat(t *testing.T) {
	e := newTokenEnv(t)
	secret, _ := e.create(t, accounts.NewToken{})
	if !regexp.MustCompile(`^prism_[0-9A-Za-z]{49}$`).MatchString(secret) || len(secret) != accounts.TokenLen {
		t.Fatalf("token %q does not have the documented shape", secret)
	}
	if err := accounts.CheckTokenFormat(secret); err != nil {
		t.Fatal(err)
	}
	// The database keeps only the SHA-256 (hex), the same one the API's
	// api.HashToken computes: PostgreSQL's own sha256 agrees.
	var same bool
	if err := e.pool.QueryRow(context.Background(),
		`SELECT token_sha256 = encode(sha256(convert_to($1, 'UTF8')), 'hex') FROM api_tokens`, secret).Scan(&same); err != nil || !same {
		t.Fatalf("stored hash is not the hex SHA-256 of the token (%v)", err)
	}
	var stored int
	if err := e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM api_tokens WHERE strpos(row_to_json(api_tokens)::text, $1) > 0`, secret[len(accounts.TokenPrefix):]).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the plaintext is stored (%d rows, %v)", stored, err)
	}
	// One changed character anywhere after the prefix fails the checksum,
	// as do other prefixes and lengths; no database needed.
	for i := len(accounts.TokenPrefix); i < len(secret); i++ {
		c := byte('a')
		if secret[i] == 'a' {
			c = 'b'
		}
		if err := accounts.CheckTokenFormat(secret[:i] + string(c) + secret[i+1:]); !errors.Is(err, accounts.ErrInvalidToken) {
			t.Fatalf("changed character %d: %v", i, err)
		}
	}
	for _, bad := range []string{"ghp_" + secret[6:], secret[:len(secret)-1], secret + "a", strings.Replace(secret, secret[10:11], "-", 1), ""} {
		if err := accounts.CheckTokenFormat(bad); !errors.Is(err, accounts.ErrInvalidToken) {
			t.Errorf("CheckTokenFormat(%q) = %v", bad, err)
		}
	}
}

// TestTokenEntropy: the 43 characters after the prefix are a 256-bit
// number and every one of those bits varies between tokens; no token
// repeats.
func TestTokenEntropy(t *testing.T) {
	e := newTokenEnv(t)
	const n = 64
	seen := map[string]bool{}
	var or, and *big.Int
	for range n {
		secret, _ := e.create(t, accounts.NewToken{})
		if seen[secret] {
			t.Fatal("a token repeated")
		}
		seen[secret] = true
		v := decodeBase62(t, secret[len(accounts.TokenPrefix):len(accounts.TokenPrefix)+43])
		if v.BitLen() > 256 {
			t.Fatalf("body holds %d bits, want at most 256", v.BitLen())
		}
		if or == nil {
			or, and = new(big.Int).Set(v), new(big.Int).Set(v)
		}
		or.Or(or, v)
		and.And(and, v)
	}
	// With 64 random tokens a given bit is set in all or none of them with
	// probability 2^-63.
	all := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	if or.Cmp(all) != 0 || and.Sign() != 0 {
		t.Fatalf("some of the 256 bits never vary: or=%x and=%x", or, and)
	}
}

// flipLast changes the last character of s to another base62 digit.
func flipLast(s string) string {
	c := byte('x')
	if s[len(s)-1] == c {
		c = 'y'
	}
	return s[:len(s)-1] + string(c)
}

func decodeBase62(t *testing.T, s string) *big.Int {
	t.Helper()
	// math/big's base 62 digits are 0-9a-zA-Z; ours are 0-9A-Za-z.
	swapped := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
	v, ok := new(big.Int).SetString(swapped, 62)
	if !ok {
		t.Fatalf("%q is not base62", s)
	}
	return v
}

func TestLookup(t *testing.T) {
	ctx := context.Background()
	e := newTokenEnv(t)
	secret, tok := e.create(t, accounts.NewToken{Name: " deploy ", Scopes: []accounts.Scope{"write", "read", "write"}, ExpiresAt: time.Now().Add(time.Hour)})
	if tok.Name != "deploy" || !slices.Equal(tok.Scopes, []accounts.Scope{"read", "write"}) || tok.ExpiresAt == nil {
		t.Fatalf("created %+v", tok)
	}
	u, got, err := e.tokens.Lookup(ctx, secret)
	if err != nil || u.ID != e.alice.ID || got.ID != tok.ID || !got.Has(accounts.ScopeWrite) || !got.Has(accounts.ScopeRead) {
		t.Fatalf("Lookup = %+v, %+v, %v", u, got, err)
	}
	readOnly, _ := e.create(t, accounts.NewToken{Scopes: []accounts.Scope{accounts.ScopeRead}})
	if _, got, err := e.tokens.Lookup(ctx, readOnly); err != nil || got.Has(accounts.ScopeWrite) {
		t.Errorf("read-only token: %+v, %v", got, err)
	}
	// A well-formed token nobody created, a malformed one, and junk.
	other, _ := newTokenEnv(t).create(t, accounts.NewToken{})
	e.refused(t, other, "a token of another database")
	e.refused(t, flipLast(secret), "bad checksum")
	e.refused(t, "", "empty")
	e.refused(t, strings.Repeat("x", 10000), "huge")
}

// TestLegacyTokens: tokens inserted by SQL before this package (as the
// API's tests do) are looked up by their hash, and revoked like any other.
func TestLegacyTokens(t *testing.T) {
	ctx := context.Background()
	e := newTokenEnv(t)
	if _, err := e.pool.Exec(ctx, `INSERT INTO api_tokens (id, user_id, token_sha256) VALUES ('legacy', $1, $2)`,
		e.alice.ID, accounts.HashToken("token-of-alice")); err != nil {
		t.Fatal(err)
	}
	u, tok, err := e.tokens.Lookup(ctx, "token-of-alice")
	if err != nil || u.ID != e.alice.ID || !tok.Has(accounts.ScopeWrite) {
		t.Fatalf("legacy token: %+v, %+v, %v; want alice with the old full access", u, tok, err)
	}
	if err := e.tokens.Revoke(ctx, "legacy"); err != nil {
		t.Fatal(err)
	}
	e.refused(t, "token-of-alice", "revoked legacy token")
}

func TestRevokedExpiredAndDisabledRefused(t *testing.T) {
	ctx := context.Background()
	e := newTokenEnv(t)
	revoked, rtok := e.create(t, accounts.NewToken{})
	kept, _ := e.create(t, accounts.NewToken{})
	if err := e.tokens.Revoke(ctx, rtok.ID); err != nil {
		t.Fatal(err)
	}
	e.refused(t, revoked, "revoked")
	if _, _, err := e.tokens.Lookup(ctx, kept); err != nil {
		t.Fatalf("revoking one token revoked another: %v", err)
	}
	if err := e.tokens.Revoke(ctx, "no-such-token"); !errors.Is(err, accounts.ErrTokenNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}

	expiring, etok := e.create(t, accounts.NewToken{ExpiresAt: time.Now().Add(time.Hour)})
	if _, _, err := e.tokens.Lookup(ctx, expiring); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, etok.ID); err != nil {
		t.Fatal(err)
	}
	e.refused(t, expiring, "expired")

	n, err := e.tokens.RevokeAll(ctx, e.alice.ID)
	if err != nil || n != 2 { // kept and expiring; revoked was already
		t.Fatalf("RevokeAll = %d, %v; want 2", n, err)
	}
	e.refused(t, kept, "revoked by RevokeAll")

	bob := addUser(t, e.users, "bob@example.com")
	bobs, _ := e.create(t, accounts.NewToken{UserID: bob.ID})
	if _, err := e.users.Disable(ctx, bob.Email); err != nil {
		t.Fatal(err)
	}
	e.refused(t, bobs, "token of a disabled user")
	if _, _, err := e.tokens.Create(ctx, accounts.NewToken{UserID: bob.ID, Name: "x", Scopes: []accounts.Scope{accounts.ScopeRead}}); !errors.Is(err, accounts.ErrUserDisabled) {
		t.Errorf("token for a disabled user: %v", err)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	e := newTokenEnv(t)
	read := []accounts.Scope{accounts.ScopeRead}
	for _, c := range []struct {
		nt   accounts.NewToken
		want error
	}{
		{accounts.NewToken{UserID: e.alice.ID, Name: "x", Scopes: []accounts.Scope{"admin"}}, accounts.ErrInvalidScope},
		{accounts.NewToken{UserID: e.alice.ID, Name: "x", Scopes: []accounts.Scope{}}, accounts.ErrInvalidScope},
		{accounts.NewToken{UserID: e.alice.ID, Name: " ", Scopes: read}, accounts.ErrInvalidName},
		{accounts.NewToken{UserID: e.alice.ID, Name: strings.Repeat("n", 101), Scopes: read}, accounts.ErrInvalidName},
		{accounts.NewToken{UserID: e.alice.ID, Name: "x", Scopes: read, ExpiresAt: time.Now().Add(-time.Second)}, accounts.ErrInvalidExpiry},
		{accounts.NewToken{UserID: "nobody", Name: "x", Scopes: read}, accounts.ErrUserNotFound},
	} {
		if _, _, err := e.tokens.Create(context.Background(), c.nt); !errors.Is(err, c.want) {
			t.Errorf("Create(%+v) = %v, want %v", c.nt, err, c.want)
		}
	}
	if _, err := e.pool.Exec(context.Background(), `INSERT INTO api_tokens (id, user_id, token_sha256, scopes)
		VALUES ('x', $1, $2, '{admin}')`, e.alice.ID, accounts.HashToken("x")); err == nil {
		t.Error("the database took a token with scope admin")
	}
	if _, err := accounts.ParseScopes("read,,write"); !errors.Is(err, accounts.ErrInvalidScope) {
		t.Errorf("ParseScopes with an empty item: %v", err)
	}
}

// TestLastUsedThrottled: Lookup records use at most once a minute per
// token. Within the minute it sends no UPDATE at all (one query per
// request) and the row is not written (its xmin, the writing transaction,
// stays); a minute later it records the use again.
func TestLastUsedThrottled(t *testing.T) {
	ctx := context.Background()
	e := newTokenEnv(t)
	secret, tok := e.create(t, accounts.NewToken{})
	updates := &updateCounter{}
	cfg := e.pool.Config().Copy()
	cfg.ConnConfig.Tracer = updates
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer traced.Close()
	tokens := accounts.NewTokens(traced)

	row := func() (lastUsed *time.Time, xmin string) {
		t.Helper()
		if err := e.pool.QueryRow(ctx, `SELECT last_used_at, xmin::text FROM api_tokens WHERE id = $1`, tok.ID).Scan(&lastUsed, &xmin); err != nil {
			t.Fatal(err)
		}
		return lastUsed, xmin
	}
	if used, _ := row(); used != nil {
		t.Fatalf("a new token has last_used_at %v", used)
	}
	lookup := func() {
		t.Helper()
		if _, _, err := tokens.Lookup(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	lookup()
	first, xmin := row()
	if first == nil || updates.n.Load() != 1 {
		t.Fatalf("first use: last_used_at %v after %d updates, want it set by one", first, updates.n.Load())
	}
	for range 5 {
		lookup()
	}
	if again, xmin2 := row(); !again.Equal(*first) || xmin2 != xmin || updates.n.Load() != 1 {
		t.Fatalf("lookups within the minute wrote: last_used_at %v -> %v, xmin %s -> %s, %d updates sent",
			first, again, xmin, xmin2, updates.n.Load())
	}
	if _, err := e.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = now() - interval '61 seconds' WHERE id = $1`, tok.ID); err != nil {
		t.Fatal(err)
	}
	backdated, _ := row()
	lookup()
	if later, _ := row(); !later.After(*backdated) || updates.n.Load() != 2 {
		t.Fatalf("a lookup a minute later did not record use: %v -> %v", backdated, later)
	}
}

// updateCounter counts the UPDATE statements a pool sends.
type updateCounter struct{ n atomic.Int64 }

func (c *updateCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if strings.HasPrefix(strings.TrimSpace(d.SQL), "UPDATE") {
		c.n.Add(1)
	}
	return ctx
}

func (c *updateCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TestListNeverShowsSecrets: listed tokens carry neither the plaintext
// nor its hash, however they are printed.
func TestListNeverShowsSecrets(t *testing.T) {
	ctx := context.Background()
	e := newTokenEnv(t)
	bob := addUser(t, e.users, "bob@example.com")
	aliceSecret, _ := e.create(t, accounts.NewToken{Name: "a"})
	bobSecret, _ := e.create(t, accounts.NewToken{UserID: bob.ID, Name: "b"})
	all, err := e.tokens.List(ctx, "")
	if err != nil || len(all) != 2 || all[0].Name != "b" || all[1].Name != "a" {
		t.Fatalf("List(all) = %+v, %v; want bob's then alice's", all, err)
	}
	mine, err := e.tokens.List(ctx, e.alice.ID)
	if err != nil || len(mine) != 1 || mine[0].UserID != e.alice.ID {
		t.Fatalf("List(alice) = %+v, %v", mine, err)
	}
	js, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	printed := string(js) + fmt.Sprintf("%+v %#v", all, all)
	for _, secret := range []string{aliceSecret, bobSecret} {
		for _, s := range []string{secret, secret[len(accounts.TokenPrefix):], accounts.HashToken(secret)} {
			if strings.Contains(printed, s) {
				t.Fatalf("listed tokens show a secret or its hash: %s", printed)
			}
		}
	}
}

// TestRevokeOwn: a user revokes their own tokens only; another user's
// token is not found, and stays valid.
func TestRevokeOwn(t *testing.T) {
	ctx := context.Background()
	e := newTokenEnv(t)
	bob := addUser(t, e.users, "bob@example.com")
	alices, atok := e.create(t, accounts.NewToken{})
	bobs, btok := e.create(t, accounts.NewToken{UserID: bob.ID})
	for _, c := range []struct{ user, id string }{{e.alice.ID, btok.ID}, {"", atok.ID}, {bob.ID, "no-such-token"}} {
		if err := e.tokens.RevokeOwn(ctx, c.user, c.id); !errors.Is(err, accounts.ErrTokenNotFound) {
			t.Errorf("RevokeOwn(%q, %s): %v, want ErrTokenNotFound", c.user, c.id, err)
		}
	}
	if _, _, err := e.tokens.Lookup(ctx, bobs); err != nil {
		t.Fatalf("alice revoked bob's token: %v", err)
	}
	if err := e.tokens.RevokeOwn(ctx, e.alice.ID, atok.ID); err != nil {
		t.Fatal(err)
	}
	e.refused(t, alices, "revoked by its user")
}
