package accounts_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/persist/persisttest"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func addUser(t *testing.T, users *accounts.Users, email string) accounts.User {
	t.Helper()
	u, err := users.Add(context.Background(), accounts.NewUser{Email: email, DisplayName: "Test User", Role: accounts.RoleUser, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestAddNormalisesAndFinds(t *testing.T) {
	ctx := context.Background()
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	u, err := users.Add(ctx, accounts.NewUser{Email: "  Alice@Example.COM ", DisplayName: " Alice ", Role: accounts.RoleAdmin, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "alice@example.com" || u.DisplayName != "Alice" || u.Role != accounts.RoleAdmin || !u.HasPassword || u.Disabled() {
		t.Fatalf("added %+v", u)
	}
	if err := streams.ValidToken(u.ID); err != nil {
		t.Fatalf("user id is not a subject token: %v", err)
	}
	for _, get := range []func() (accounts.User, error){
		func() (accounts.User, error) { return users.Get(ctx, "ALICE@example.com") },
		func() (accounts.User, error) { return users.GetByID(ctx, u.ID) },
	} {
		got, err := get()
		if err != nil || got.ID != u.ID || got.Email != u.Email {
			t.Errorf("got %+v, %v; want %+v", got, err, u)
		}
	}
	bob := addUser(t, users, "bob@example.com")
	list, err := users.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != u.ID || list[1].ID != bob.ID {
		t.Fatalf("List = %+v", list)
	}
	if _, err := users.Get(ctx, "carol@example.com"); !errors.Is(err, accounts.ErrUserNotFound) {
		t.Errorf("unknown email: %v, want ErrUserNotFound", err)
	}
}

func TestEmailUniqueInAnyCase(t *testing.T) {
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	addUser(t, users, "Alice@Example.com")
	_, err := users.Add(context.Background(), accounts.NewUser{Email: "aLICE@example.COM", Role: accounts.RoleUser, Password: password})
	if !errors.Is(err, accounts.ErrEmailTaken) {
		t.Fatalf("second alice: %v, want ErrEmailTaken", err)
	}
}

func TestAddRefusesBadInput(t *testing.T) {
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	for _, c := range []struct {
		nu   accounts.NewUser
		want error
	}{
		{accounts.NewUser{Email: "not an email", Role: accounts.RoleUser, Password: password}, accounts.ErrInvalidEmail},
		{accounts.NewUser{Email: "Alice <alice@example.com>", Role: accounts.RoleUser, Password: password}, accounts.ErrInvalidEmail},
		{accounts.NewUser{Email: "ålice@example.com", Role: accounts.RoleUser, Password: password}, accounts.ErrInvalidEmail},
		{accounts.NewUser{Email: strings.Repeat("a", 250) + "@example.com", Role: accounts.RoleUser, Password: password}, accounts.ErrInvalidEmail},
		{accounts.NewUser{Email: "alice@example.com", Role: "root", Password: password}, accounts.ErrInvalidRole},
		{accounts.NewUser{Email: "alice@example.com", Role: accounts.RoleUser, Password: "short"}, accounts.ErrPasswordPolicy},
		{accounts.NewUser{Email: "alice@example.com", DisplayName: "a\x00b", Role: accounts.RoleUser, Password: password}, accounts.ErrInvalidName},
	} {
		if _, err := users.Add(context.Background(), c.nu); !errors.Is(err, c.want) {
			t.Errorf("Add(%q, %q, %q): %v, want %v", c.nu.Email, c.nu.DisplayName, c.nu.Role, err, c.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	alice := addUser(t, users, "alice@example.com")
	got, err := users.Authenticate(ctx, " ALICE@example.com", password)
	if err != nil || got.ID != alice.ID {
		t.Fatalf("right password: %+v, %v", got, err)
	}
	for name, c := range map[string][2]string{
		"wrong password":   {"alice@example.com", password + "x"},
		"unknown email":    {"nobody@example.com", password},
		"not an email":     {"nobody", password},
		"empty password":   {"alice@example.com", ""},
		"hostile password": {"alice@example.com", strings.Repeat("x", 1<<20)},
	} {
		if _, err := users.Authenticate(ctx, c[0], c[1]); err != accounts.ErrInvalidCredentials {
			t.Errorf("%s: %v, want exactly ErrInvalidCredentials", name, err)
		}
	}
}

// TestUnknownEmailCostsTheSameWork: signing in as nobody, or as a
// disabled user, runs argon2 with the current parameters (its memory is
// what it allocates), so the answer's timing does not tell which
// accounts exist.
func TestUnknownEmailCostsTheSameWork(t *testing.T) {
	ctx := context.Background()
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	addUser(t, users, "alice@example.com")
	addUser(t, users, "gone@example.com")
	if _, err := users.Disable(ctx, "gone@example.com"); err != nil {
		t.Fatal(err)
	}
	_, _ = users.Authenticate(ctx, "warm-up@example.com", password) // makes the dummy hash once
	argon2Memory := uint64(accounts.DefaultParams().Memory) << 10
	for _, email := range []string{"alice@example.com", "nobody@example.com", "not-an-email", "gone@example.com"} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := users.Authenticate(ctx, email, "a wrong password")
		runtime.ReadMemStats(&after)
		if err != accounts.ErrInvalidCredentials {
			t.Errorf("%s: %v, want exactly ErrInvalidCredentials", email, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew < argon2Memory || grew > 2*argon2Memory {
			t.Errorf("%s: signing in allocated %d bytes, want one argon2 run of %d", email, grew, argon2Memory)
		}
	}
}

// TestHostileStoredHash: a stored hash asking for 4 GiB of memory (a
// corrupt row, or one written by an attacker with database access) is
// refused: the sign-in fails after the usual dummy work, nothing more.
func TestHostileStoredHash(t *testing.T) {
	ctx := context.Background()
	pool := persisttest.DB(t)
	users := accounts.NewUsers(pool, accounts.DefaultParams())
	addUser(t, users, "alice@example.com")
	if _, err := pool.Exec(ctx, `UPDATE users SET password_hash = '$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U'`); err != nil {
		t.Fatal(err)
	}
	_, _ = users.Authenticate(ctx, "warm-up@example.com", password) // makes the dummy hash once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := users.Authenticate(ctx, "alice@example.com", password)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, accounts.ErrInvalidCredentials) || !errors.Is(err, accounts.ErrMalformedHash) {
		t.Fatalf("sign-in on a hostile hash: %v, want ErrInvalidCredentials and ErrMalformedHash", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 2*uint64(accounts.DefaultParams().Memory)<<10 {
		t.Fatalf("sign-in on a hostile hash allocated %d bytes", grew)
	}
}

func TestDisabledUserCannotSignIn(t *testing.T) {
	ctx := context.Background()
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	addUser(t, users, "alice@example.com")
	u, err := users.Disable(ctx, "Alice@example.com")
	if err != nil || !u.Disabled() {
		t.Fatalf("Disable: %+v, %v", u, err)
	}
	if _, err := users.Authenticate(ctx, "alice@example.com", password); err != accounts.ErrInvalidCredentials {
		t.Fatalf("disabled user signed in: %v", err)
	}
	again, err := users.Disable(ctx, "alice@example.com")
	if err != nil || !again.DisabledAt.Equal(*u.DisabledAt) {
		t.Errorf("disabling twice: %+v, %v; want the first time kept", again, err)
	}
	if _, err := users.Disable(ctx, "nobody@example.com"); !errors.Is(err, accounts.ErrUserNotFound) {
		t.Errorf("disable unknown: %v", err)
	}
}

func TestSetPassword(t *testing.T) {
	ctx := context.Background()
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	addUser(t, users, "alice@example.com")
	const next = "a different long passphrase"
	if _, err := users.SetPassword(ctx, "alice@example.com", "short"); !errors.Is(err, accounts.ErrPasswordPolicy) {
		t.Fatalf("short password: %v", err)
	}
	if _, err := users.SetPassword(ctx, "alice@example.com", next); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Authenticate(ctx, "alice@example.com", password); err != accounts.ErrInvalidCredentials {
		t.Errorf("old password still works: %v", err)
	}
	if _, err := users.Authenticate(ctx, "alice@example.com", next); err != nil {
		t.Errorf("new password: %v", err)
	}
	if _, err := users.SetPassword(ctx, "nobody@example.com", next); !errors.Is(err, accounts.ErrUserNotFound) {
		t.Errorf("unknown user: %v", err)
	}
}

// TestSignInRaisesOldParameters: a hash made with parameters below the
// current ones is replaced at the next successful sign-in, not at a
// failed one.
func TestSignInRaisesOldParameters(t *testing.T) {
	ctx := context.Background()
	pool := persisttest.DB(t)
	old := accounts.NewUsers(pool, accounts.Params{Memory: 8192, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	addUser(t, old, "alice@example.com")
	stored := func() string {
		var h string
		if err := pool.QueryRow(ctx, `SELECT password_hash FROM users`).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	before := stored()
	users := accounts.NewUsers(pool, accounts.DefaultParams())
	if _, err := users.Authenticate(ctx, "alice@example.com", "wrong password!"); err != accounts.ErrInvalidCredentials {
		t.Fatal(err)
	}
	if stored() != before {
		t.Fatal("a failed sign-in changed the hash")
	}
	if _, err := users.Authenticate(ctx, "alice@example.com", password); err != nil {
		t.Fatal(err)
	}
	after := stored()
	if !strings.HasPrefix(after, "$argon2id$v=19$m=19456,t=2,p=1$") || accounts.NeedsRehash(after, accounts.DefaultParams()) {
		t.Fatalf("after sign-in the hash is %.40s..., want the current parameters", after)
	}
	if _, err := users.Authenticate(ctx, "alice@example.com", password); err != nil {
		t.Fatalf("sign-in with the new hash: %v", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	ctx := context.Background()
	users := accounts.NewUsers(persisttest.DB(t), accounts.DefaultParams())
	created, err := users.EnsureAdmin(ctx, "Root@example.com", password)
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin: %v, %v", created, err)
	}
	u, err := users.Authenticate(ctx, "root@example.com", password)
	if err != nil || u.Role != accounts.RoleAdmin {
		t.Fatalf("admin: %+v, %v", u, err)
	}
	created, err = users.EnsureAdmin(ctx, "root@example.com", "another long password")
	if err != nil || created {
		t.Fatalf("second EnsureAdmin: %v, %v; want nothing done", created, err)
	}
	if _, err := users.Authenticate(ctx, "root@example.com", password); err != nil {
		t.Fatalf("the admin's password was overwritten: %v", err)
	}
}

// TestDatabaseRefusesBadUserIDs: the user id reaches NATS subjects, so
// the database holds it to the subject-token rule whoever writes the row.
func TestDatabaseRefusesBadUserIDs(t *testing.T) {
	ctx := context.Background()
	pool := persisttest.DB(t)
	for _, id := range []string{"a.b", "a*", "a>", "a b", "a\tb", "", strings.Repeat("a", streams.MaxTokenLen+1), "ünï"} {
		_, err := pool.Exec(ctx, `INSERT INTO users (id, email) VALUES ($1, 'x@example.com')`, id)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.ConstraintName != "users_id_subject_token" {
			t.Errorf("id %q: %v, want a users_id_subject_token violation", id, err)
		}
	}
	for _, id := range []string{"alice", "01J9ZK3V4T9Q-x_Y", strings.Repeat("a", streams.MaxTokenLen)} {
		if _, err := pool.Exec(ctx, `INSERT INTO users (id, email) VALUES ($1, lower($1) || '@example.com')`, id); err != nil {
			t.Errorf("id %q: %v", id, err)
		}
	}
	for _, bad := range []string{
		`INSERT INTO users (id, email, role) VALUES ('r', 'r@example.com', 'root')`,
		`INSERT INTO users (id, email, password_hash) VALUES ('p', 'p@example.com', 'plaintext')`,
	} {
		if _, err := pool.Exec(ctx, bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
