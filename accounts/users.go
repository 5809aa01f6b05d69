package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Role is what a user may do: a user sees their own documents, an admin
// everyone's.
type Role string

// Roles.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleUser, RoleAdmin:
		return r, nil
	}
	return "", fmt.Errorf("%w: %q", ErrInvalidRole, s)
}

// Bounds on what users give us.
const (
	maxEmailLen       = 254 // RFC 5321's path limit less the brackets
	maxDisplayNameLen = 200
)

// User is an account. It never carries the password hash.
type User struct {
	ID          string // the owner id of the user's documents; a subject token
	Email       string // normalised: trimmed and lowercased
	DisplayName string
	Role        Role
	HasPassword bool // false for users who can only use tokens
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DisabledAt  *time.Time
}

// Disabled reports whether the user may no longer sign in or use tokens.
func (u User) Disabled() bool { return u.DisabledAt != nil }

// NewUser is what Add needs to create a user.
type NewUser struct {
	Email       string
	DisplayName string
	Role        Role
	Password    string
}

// Users stores accounts in the users table.
type Users struct {
	pool   *pgxpool.Pool
	params Params
	// dummy is a hash of a random password under params: Authenticate
	// verifies against it when there is no real hash to verify, so an
	// unknown email costs the same argon2 time as a known one.
	dummy func() (string, error)
}

// NewUsers returns the users stored in pool, hashing new passwords with
// params (DefaultParams unless a deployment raises them).
func NewUsers(pool *pgxpool.Pool, params Params) *Users {
	return &Users{pool: pool, params: params, dummy: sync.OnceValues(func() (string, error) {
		return HashPassword(rand.Text(), params)
	})}
}

// NormalizeEmail trims and lowercases an email address and checks that it
// is a plain ASCII address (user@domain, no display name or comments).
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	bad := func() (string, error) { return "", fmt.Errorf("%w: %q", ErrInvalidEmail, s) }
	if len(e) < 3 || len(e) > maxEmailLen {
		return bad()
	}
	for _, r := range e {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' {
			return bad()
		}
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e {
		return bad()
	}
	return e, nil
}

func checkDisplayName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len([]rune(s)) > maxDisplayNameLen || strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Errorf("%w: a display name is at most %d characters, without control characters", ErrInvalidName, maxDisplayNameLen)
	}
	return s, nil
}

// Add creates a user with a new id. An email already used, in any case,
// is ErrEmailTaken.
func (u *Users) Add(ctx context.Context, nu NewUser) (User, error) {
	email, err := NormalizeEmail(nu.Email)
	if err != nil {
		return User{}, err
	}
	name, err := checkDisplayName(nu.DisplayName)
	if err != nil {
		return User{}, err
	}
	role, err := ParseRole(string(nu.Role))
	if err != nil {
		return User{}, err
	}
	if err := CheckPassword(nu.Password); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(nu.Password, u.params)
	if err != nil {
		return User{}, err
	}
	id := streams.NewID()
	if err := streams.ValidToken(id); err != nil {
		return User{}, fmt.Errorf("new user id: %w", err)
	}
	row := u.pool.QueryRow(ctx, `INSERT INTO users (id, email, display_name, role, password_hash)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+userColumns, id, email, name, role, hash)
	usr, err := scanUser(row)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "users_email_key" {
		return User{}, fmt.Errorf("%w: %s", ErrEmailTaken, email)
	}
	if err != nil {
		return User{}, fmt.Errorf("add user %s: %w", email, err)
	}
	return usr, nil
}

// List returns every user, oldest first.
func (u *Users) List(ctx context.Context) ([]User, error) {
	scan := func(r pgx.Row) (User, error) { return scanUser(r) }
	return queryAll(ctx, u.pool, "list users", scan, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
}

// Get returns the user with email (in any case).
func (u *Users) Get(ctx context.Context, email string) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	return u.one(ctx, e, `SELECT `+userColumns+` FROM users WHERE email = $1`, e)
}

// GetByID returns the user with id.
func (u *Users) GetByID(ctx context.Context, id string) (User, error) {
	return u.one(ctx, "id "+id, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// Disable stops the user with email from signing in and makes their API
// tokens stop working; disabling twice keeps the first time. Sessions
// refuse a disabled user at once (Sessions.Lookup reads the user); the
// caller also ends them (Sessions.EndAll), so nothing of them is left.
func (u *Users) Disable(ctx context.Context, email string) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	return u.one(ctx, e, `UPDATE users SET disabled_at = COALESCE(disabled_at, now()), updated_at = now()
		WHERE email = $1 RETURNING `+userColumns, e)
}

// SetPassword replaces the password of the user with email. The caller
// ends the user's sessions (Sessions.EndAll, EndUserSessions).
func (u *Users) SetPassword(ctx context.Context, email, password string) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	hash, err := HashPassword(password, u.params)
	if err != nil {
		return User{}, err
	}
	return u.one(ctx, e, `UPDATE users SET password_hash = $2, updated_at = now()
		WHERE email = $1 RETURNING `+userColumns, e, hash)
}

// Authenticate returns the user whose email and password these are. Any
// failure a person could cause (unknown email, wrong password, disabled
// account, no password) is ErrInvalidCredentials, after the same argon2
// work, so neither the answer nor its timing tells whether an account
// exists. A hash made with weaker parameters than the current ones is
// replaced, now that the password is at hand.
func (u *Users) Authenticate(ctx context.Context, email, password string) (User, error) {
	if len(password) > MaxPasswordLen {
		return User{}, ErrInvalidCredentials // no hashing of hostile lengths; says nothing about the account
	}
	e, err := NormalizeEmail(email)
	var usr User
	var hash *string
	if err == nil {
		usr, hash, err = u.withHash(ctx, e)
		if err != nil && !errors.Is(err, ErrUserNotFound) {
			return User{}, err
		}
	}
	if err != nil || hash == nil {
		return User{}, u.burn(password)
	}
	ok, verr := VerifyPassword(password, *hash)
	if verr != nil {
		// The stored hash is broken: the account cannot sign in until an
		// admin sets a password. Spend the usual time all the same.
		return User{}, errors.Join(u.burn(password), fmt.Errorf("user %s: %w", usr.ID, verr))
	}
	if !ok || usr.Disabled() {
		return User{}, ErrInvalidCredentials
	}
	if NeedsRehash(*hash, u.params) {
		if err := u.rehash(ctx, usr.ID, *hash, password); err != nil {
			return User{}, err
		}
	}
	return usr, nil
}

// burn verifies password against the dummy hash and returns
// ErrInvalidCredentials (joined with the error making the dummy, if any).
func (u *Users) burn(password string) error {
	dummy, err := u.dummy()
	if err != nil {
		return errors.Join(ErrInvalidCredentials, fmt.Errorf("dummy hash: %w", err))
	}
	_, _ = VerifyPassword(password, dummy)
	return ErrInvalidCredentials
}

// rehash stores a new hash of password under the current parameters,
// unless the password changed since old was read.
func (u *Users) rehash(ctx context.Context, id, old, password string) error {
	hash, err := HashPassword(password, u.params)
	if err != nil {
		return err
	}
	if _, err := u.pool.Exec(ctx, `UPDATE users SET password_hash = $3, updated_at = now()
		WHERE id = $1 AND password_hash = $2`, id, old, hash); err != nil {
		return fmt.Errorf("rehash password of user %s: %w", id, err)
	}
	return nil
}

// EnsureAdmin creates an admin with email and password unless a user with
// that email exists, whatever its role or password: it runs at every start
// (prism migrate) and never overwrites what an admin changed since.
func (u *Users) EnsureAdmin(ctx context.Context, email, password string) (created bool, err error) {
	if _, err := u.Get(ctx, email); !errors.Is(err, ErrUserNotFound) {
		return false, err
	}
	_, err = u.Add(ctx, NewUser{Email: email, Role: RoleAdmin, Password: password})
	if errors.Is(err, ErrEmailTaken) {
		return false, nil // another process bootstrapped it first
	}
	return err == nil, err
}

const userColumns = `id, email, display_name, role, password_hash IS NOT NULL, created_at, updated_at, disabled_at`

// fields are the scan destinations of userColumns.
func (u *User) fields() []any {
	return []any{&u.ID, &u.Email, &u.DisplayName, &u.Role, &u.HasPassword, &u.CreatedAt, &u.UpdatedAt, &u.DisabledAt}
}

func scanUser(row pgx.Row, extra ...any) (User, error) {
	var usr User
	err := row.Scan(append(usr.fields(), extra...)...)
	return usr, err
}

// one runs a query of one user, named who in errors.
func (u *Users) one(ctx context.Context, who, sql string, args ...any) (User, error) {
	usr, err := scanUser(u.pool.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("%w: %s", ErrUserNotFound, who)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", who, err)
	}
	return usr, nil
}

func (u *Users) withHash(ctx context.Context, email string) (User, *string, error) {
	var hash *string
	usr, err := scanUser(u.pool.QueryRow(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE email = $1`, email), &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, nil, ErrUserNotFound
	}
	if err != nil {
		return User{}, nil, fmt.Errorf("user: %w", err)
	}
	return usr, hash, nil
}
