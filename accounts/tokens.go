package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math/big"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// An API token is TokenPrefix, then 32 random bytes in base62 (43
// characters), then the CRC32 of those 43 characters in base62 (6
// characters), like GitHub's tokens: the prefix lets secret scanners find
// leaked tokens and the checksum lets them tell a real token's shape from
// noise without asking us.
const (
	TokenPrefix   = "prism_"
	tokenBytes    = 32
	tokenBodyLen  = 43 // base62 digits of a 256-bit number
	tokenCheckLen = 6  // base62 digits of a 32-bit number
	TokenLen      = len(TokenPrefix) + tokenBodyLen + tokenCheckLen
	// maxLookupLen bounds what Lookup hashes: tokens from before
	// TokenPrefix (inserted by SQL) may have other lengths.
	maxLookupLen = 256
	maxTokenName = 100
	base62Digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// touchInterval is how stale last_used_at may get: Lookup writes it
	// at most this often per token, not on every request.
	touchInterval = "1 minute"
)

// Scope is what a token may do.
type Scope string

// Scopes.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// ParseScopes reads a comma-separated list of scopes ("read,write").
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for part := range strings.SplitSeq(s, ",") {
		out = append(out, Scope(strings.TrimSpace(part)))
	}
	return normalizeScopes(out)
}

// normalizeScopes checks scopes and returns them sorted, without repeats.
func normalizeScopes(scopes []Scope) ([]Scope, error) {
	if len(scopes) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrInvalidScope)
	}
	for _, sc := range scopes {
		if sc != ScopeRead && sc != ScopeWrite {
			return nil, fmt.Errorf("%w: %q", ErrInvalidScope, sc)
		}
	}
	out := slices.Clone(scopes)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Token is an API token as stored: never its secret nor its hash.
type Token struct {
	ID         string
	UserID     string
	Name       string
	Scopes     []Scope
	CreatedAt  time.Time
	LastUsedAt *time.Time // updated at most once a minute
	ExpiresAt  *time.Time // nil: never
	RevokedAt  *time.Time
}

// Has reports whether the token grants scope.
func (t Token) Has(scope Scope) bool { return slices.Contains(t.Scopes, scope) }

// NewToken is what Create needs to make a token.
type NewToken struct {
	UserID    string
	Name      string
	Scopes    []Scope
	ExpiresAt time.Time // zero: never
}

// Tokens stores API tokens in the api_tokens table.
type Tokens struct {
	pool *pgxpool.Pool
}

// NewTokens returns the tokens stored in pool.
func NewTokens(pool *pgxpool.Pool) *Tokens { return &Tokens{pool: pool} }

// HashToken is how a token is stored and looked up: the hex SHA-256 of
// the whole token (the API's api.HashToken). Tokens are 256 random bits,
// so a fast hash suffices where passwords need argon2.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CheckTokenFormat reports whether token has the shape of a token Create
// makes: prefix, length, alphabet and checksum. It needs no database.
func CheckTokenFormat(token string) error {
	body, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok || len(token) != TokenLen {
		return fmt.Errorf("%w: not %s followed by %d characters", ErrInvalidToken, TokenPrefix, tokenBodyLen+tokenCheckLen)
	}
	if strings.ContainsFunc(body, func(r rune) bool { return !strings.ContainsRune(base62Digits, r) }) {
		return fmt.Errorf("%w: not base62", ErrInvalidToken)
	}
	if tokenChecksum(body[:tokenBodyLen]) != body[tokenBodyLen:] {
		return fmt.Errorf("%w: checksum mismatch", ErrInvalidToken)
	}
	return nil
}

// newTokenSecret returns a new token's plaintext.
func newTokenSecret() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token secret: %w", err)
	}
	body := base62(new(big.Int).SetBytes(b), tokenBodyLen)
	return TokenPrefix + body + tokenChecksum(body), nil
}

func tokenChecksum(body string) string {
	return base62(new(big.Int).SetUint64(uint64(crc32.ChecksumIEEE([]byte(body)))), tokenCheckLen)
}

// base62 writes n in width base62 digits, zero-padded, so every token has
// the same length whatever its leading bytes.
func base62(n *big.Int, width int) string {
	out := make([]byte, width)
	base, d := big.NewInt(62), new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, d)
		out[i] = base62Digits[d.Int64()]
	}
	return string(out)
}

// Create makes a token for an enabled user and returns its plaintext,
// which is not stored and cannot be shown again, with the stored token.
func (ts *Tokens) Create(ctx context.Context, nt NewToken) (string, Token, error) {
	name := strings.TrimSpace(nt.Name)
	if name == "" || len([]rune(name)) > maxTokenName || strings.ContainsFunc(name, unicode.IsControl) {
		return "", Token{}, fmt.Errorf("%w: a token name is 1 to %d characters, without control characters", ErrInvalidName, maxTokenName)
	}
	scopes, err := normalizeScopes(nt.Scopes)
	if err != nil {
		return "", Token{}, err
	}
	var expires *time.Time
	if !nt.ExpiresAt.IsZero() {
		if !nt.ExpiresAt.After(time.Now()) {
			return "", Token{}, fmt.Errorf("%w: %s", ErrInvalidExpiry, nt.ExpiresAt.Format(time.RFC3339))
		}
		expires = &nt.ExpiresAt
	}
	var disabled bool
	err = ts.pool.QueryRow(ctx, `SELECT disabled_at IS NOT NULL FROM users WHERE id = $1`, nt.UserID).Scan(&disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", Token{}, fmt.Errorf("%w: id %s", ErrUserNotFound, nt.UserID)
	}
	if err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	if disabled {
		return "", Token{}, fmt.Errorf("create token: user %s: %w", nt.UserID, ErrUserDisabled)
	}
	secret, err := newTokenSecret()
	if err != nil {
		return "", Token{}, err
	}
	t, err := scanToken(ts.pool.QueryRow(ctx, `INSERT INTO api_tokens (id, user_id, name, token_sha256, scopes, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+tokenColumns,
		streams.NewID(), nt.UserID, name, HashToken(secret), scopes, expires))
	if err != nil {
		return "", Token{}, fmt.Errorf("create token: %w", err)
	}
	return secret, t, nil
}

// List returns the tokens of the user with userID, or every user's when
// userID is empty, newest first.
func (ts *Tokens) List(ctx context.Context, userID string) ([]Token, error) {
	return queryAll(ctx, ts.pool, "list tokens", scanToken, `SELECT `+tokenColumns+` FROM api_tokens
		WHERE $1 = '' OR user_id = $1 ORDER BY created_at DESC, id DESC`, userID)
}

// Revoke revokes the token with id; revoking twice keeps the first time.
// The next Lookup on any replica refuses it: nothing caches tokens.
func (ts *Tokens) Revoke(ctx context.Context, id string) error {
	return ts.revoke(ctx, "", id)
}

// RevokeOwn is Revoke of a token of the user with userID only: another
// user's token is ErrTokenNotFound, as if it did not exist.
func (ts *Tokens) RevokeOwn(ctx context.Context, userID, id string) error {
	if userID == "" {
		return fmt.Errorf("%w: %s", ErrTokenNotFound, id)
	}
	return ts.revoke(ctx, userID, id)
}

// revoke revokes the token with id, of the user with userID unless it is
// empty.
func (ts *Tokens) revoke(ctx context.Context, userID, id string) error {
	tag, err := ts.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now())
		WHERE id = $1 AND ($2 = '' OR user_id = $2)`, id, userID)
	if err != nil {
		return fmt.Errorf("revoke token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %s", ErrTokenNotFound, id)
	}
	return nil
}

// RevokeAll revokes every live token of the user with userID and returns
// how many it revoked.
func (ts *Tokens) RevokeAll(ctx context.Context, userID string) (int64, error) {
	tag, err := ts.pool.Exec(ctx, `UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL`, userID)
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of user %s: %w", userID, err)
	}
	return tag.RowsAffected(), nil
}

// Lookup returns the token whose plaintext is token and its user. Any
// token that must not be honoured (malformed, unknown, revoked, expired,
// or of a disabled user) is ErrInvalidToken, with the cause in the
// message for logs. A token without TokenPrefix is looked up by hash
// only: those are the tokens inserted by SQL before tokens were made here.
func (ts *Tokens) Lookup(ctx context.Context, token string) (User, Token, error) {
	if token == "" || len(token) > maxLookupLen {
		return User{}, Token{}, fmt.Errorf("%w: empty or too long", ErrInvalidToken)
	}
	if strings.HasPrefix(token, TokenPrefix) {
		if err := CheckTokenFormat(token); err != nil {
			return User{}, Token{}, err
		}
	}
	var usr User
	var t Token
	var expired, stale bool
	err := ts.pool.QueryRow(ctx, `SELECT `+prefixed("t.", tokenColumns)+`, `+prefixed("u.", userColumns)+`,
			COALESCE(t.expires_at <= now(), false),
			t.last_used_at IS NULL OR t.last_used_at < now() - interval '`+touchInterval+`'
		FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_sha256 = $1`, HashToken(token)).Scan(
		append(append(t.fields(), usr.fields()...), &expired, &stale)...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return User{}, Token{}, fmt.Errorf("%w: unknown", ErrInvalidToken)
	case err != nil:
		return User{}, Token{}, fmt.Errorf("look up token: %w", err)
	case t.RevokedAt != nil:
		return User{}, Token{}, fmt.Errorf("%w: token %s revoked", ErrInvalidToken, t.ID)
	case expired:
		return User{}, Token{}, fmt.Errorf("%w: token %s expired", ErrInvalidToken, t.ID)
	case usr.Disabled():
		return User{}, Token{}, fmt.Errorf("%w: token %s: user disabled", ErrInvalidToken, t.ID)
	}
	if stale {
		// The condition again, so replicas racing on one token write once.
		if _, err := ts.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = now()
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '`+touchInterval+`')`, t.ID); err != nil {
			return User{}, Token{}, fmt.Errorf("note token %s used: %w", t.ID, err)
		}
	}
	return usr, t, nil
}

const tokenColumns = `id, user_id, name, scopes, created_at, last_used_at, expires_at, revoked_at`

// fields are the scan destinations of tokenColumns.
func (t *Token) fields() []any {
	return []any{&t.ID, &t.UserID, &t.Name, &t.Scopes, &t.CreatedAt, &t.LastUsedAt, &t.ExpiresAt, &t.RevokedAt}
}

func scanToken(row pgx.Row) (Token, error) {
	var t Token
	err := row.Scan(t.fields()...)
	return t, err
}

// prefixed qualifies each of a comma-separated list of columns.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = p + c
	}
	return strings.Join(cols, ", ")
}
