// Package accounts owns AI-Prism's users, API tokens and preferences,
// stored in PostgreSQL (tables users, api_tokens and user_preferences,
// created by persist/migrations). It is the one place that creates,
// checks and revokes users and tokens: the prism
// command administers them and the API authenticates with them.
//
// A user's id is the owner id of everything the user stores, and it
// reaches NATS subjects and object keys: it is generated here, always a
// valid subject token (streams.ValidToken), and the database refuses any
// other. Passwords are kept as argon2id PHC strings (password.go); tokens
// only as their SHA-256 (tokens.go).
//
// Sessions (sessions.go) and the sign-in throttle (throttle.go) live in
// JetStream KV buckets, so that every API replica shares them: a session
// begun on one replica works on all, and ending it on one ends it on all.
// Whoever disables a user or changes a password ends the user's sessions
// too (Sessions.EndAll, EndUserSessions).
package accounts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors callers tell apart with errors.Is. Messages are fit for the
// person administering or signing in; none carries a secret.
var (
	// ErrInvalidCredentials is every failed sign-in: unknown email, wrong
	// password, disabled account. One error, so a caller cannot reveal
	// which accounts exist.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrInvalidToken is an API token that is malformed, unknown, revoked,
	// expired, or whose user is disabled.
	ErrInvalidToken = errors.New("invalid API token")

	ErrEmailTaken     = errors.New("a user with this email already exists")
	ErrInvalidEmail   = errors.New("not a valid email address")
	ErrInvalidRole    = errors.New("role must be user or admin")
	ErrInvalidName    = errors.New("invalid name")
	ErrPasswordPolicy = errors.New("password does not meet the policy")
	ErrUserNotFound   = errors.New("no such user")
	ErrUserDisabled   = errors.New("user is disabled")
	ErrTokenNotFound  = errors.New("no such API token")
	ErrInvalidScope   = errors.New("scopes must be read and/or write")
	ErrInvalidExpiry  = errors.New("expiry must be in the future")
	// ErrMalformedHash is a stored password hash that cannot be read, or
	// whose parameters are out of bounds.
	ErrMalformedHash = errors.New("malformed password hash")
)

// ReadPassword reads a password from r: its first line, without the line
// ending, so that a file made with echo or an editor works. It reads no
// more than a valid password can need, and checks the policy.
func ReadPassword(r io.Reader) (string, error) {
	buf, err := io.ReadAll(io.LimitReader(r, MaxPasswordLen+3)) // a password and "\r\n", plus one byte to see excess
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	line, _, _ := strings.Cut(string(buf), "\n")
	line = strings.TrimSuffix(line, "\r")
	if err := CheckPassword(line); err != nil { // a line cut short by the limit is still too long
		return "", err
	}
	return line, nil
}

// queryAll runs sql and scans every row; what names the query in errors.
func queryAll[T any](ctx context.Context, pool *pgxpool.Pool, what string, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}
