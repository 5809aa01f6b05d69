package accounts_test

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/aiprism/prism/accounts"
)

const password = "correct horse battery staple"

func TestHashRoundTrip(t *testing.T) {
	hash, err := accounts.HashPassword(password, accounts.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	// The PHC string records the OWASP parameters, a 16-byte salt and a
	// 32-byte key (22 and 43 unpadded base64 characters).
	if !regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`).MatchString(hash) {
		t.Fatalf("hash %q is not the expected PHC string", hash)
	}
	if ok, err := accounts.VerifyPassword(password, hash); err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, err := accounts.VerifyPassword(password+"!", hash); err != nil || ok {
		t.Fatalf("wrong password: ok=%v err=%v", ok, err)
	}
	again, err := accounts.HashPassword(password, accounts.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if again == hash {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
}

// TestTamperedHash: a changed salt or key verifies as a wrong password,
// not as an error and never as a match.
func TestTamperedHash(t *testing.T) {
	hash, err := accounts.HashPassword(password, accounts.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(hash, "$")
	for i, name := range map[int]string{4: "salt", 5: "key"} {
		p := append([]string(nil), parts...)
		c := byte('A')
		if p[i][0] == 'A' {
			c = 'B'
		}
		p[i] = string(c) + p[i][1:]
		if ok, err := accounts.VerifyPassword(password, strings.Join(p, "$")); ok || err != nil {
			t.Errorf("tampered %s: ok=%v err=%v, want a mismatch", name, ok, err)
		}
	}
}

// TestHostileHashesRejected: a stored hash is input too. Parameters out
// of bounds (gigabytes of memory, hours of passes), other algorithms and
// malformed fields are refused before argon2 allocates anything.
func TestHostileHashesRejected(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	phc := func(v, params, s, k string) string { return "$argon2id$" + v + "$" + params + "$" + s + "$" + k }
	for name, hash := range map[string]string{
		"4 GiB of memory":      phc("v=19", "m=4194304,t=2,p=1", salt, key),
		"just over the bound":  phc("v=19", "m=262145,t=2,p=1", salt, key),
		"memory past uint32":   phc("v=19", "m=4294967296,t=2,p=1", salt, key),
		"a thousand passes":    phc("v=19", "m=19456,t=1000,p=1", salt, key),
		"255 lanes":            phc("v=19", "m=19456,t=2,p=255", salt, key),
		"zero passes":          phc("v=19", "m=19456,t=0,p=1", salt, key),
		"zero lanes":           phc("v=19", "m=19456,t=2,p=0", salt, key),
		"signed number":        phc("v=19", "m=+19456,t=2,p=1", salt, key),
		"leading zero":         phc("v=19", "m=019456,t=2,p=1", salt, key),
		"parameters reordered": phc("v=19", "t=2,m=19456,p=1", salt, key),
		"old version":          phc("v=16", "m=19456,t=2,p=1", salt, key),
		"short salt":           phc("v=19", "m=19456,t=2,p=1", "c2FsdA", key),
		"short key":            phc("v=19", "m=19456,t=2,p=1", salt, "a2V5"),
		"key not base64":       phc("v=19", "m=19456,t=2,p=1", salt, "!!!!"+key[4:]),
		"padded base64":        phc("v=19", "m=19456,t=2,p=1", salt+"==", key),
		"argon2i":              "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key,
		"bcrypt":               "$2a$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
		"extra field":          phc("v=19", "m=19456,t=2,p=1", salt, key) + "$x",
		"huge string":          phc("v=19", "m=19456,t=2,p=1", salt, strings.Repeat("A", 1<<20)),
		"empty":                "",
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			ok, err := accounts.VerifyPassword(password, hash)
			runtime.ReadMemStats(&after)
			if ok || !errors.Is(err, accounts.ErrMalformedHash) {
				t.Fatalf("ok=%v err=%v, want ErrMalformedHash", ok, err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
				t.Errorf("refusing it allocated %d bytes", grew)
			}
			if !accounts.NeedsRehash(hash, accounts.DefaultParams()) {
				t.Error("NeedsRehash is false for a hash that cannot be read")
			}
		})
	}
}

func TestNeedsRehash(t *testing.T) {
	cheap := accounts.Params{Memory: 8192, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	stronger := accounts.DefaultParams()
	stronger.Time++
	for _, c := range []struct {
		made accounts.Params
		want bool
	}{
		{cheap, true},
		{accounts.DefaultParams(), false},
		{stronger, false}, // raised by hand: never lowered back
	} {
		hash, err := accounts.HashPassword(password, c.made)
		if err != nil {
			t.Fatal(err)
		}
		if got := accounts.NeedsRehash(hash, accounts.DefaultParams()); got != c.want {
			t.Errorf("hash made with %+v: NeedsRehash = %v, want %v", c.made, got, c.want)
		}
	}
}

// TestPasswordPolicy: NIST 800-63B style, length only.
func TestPasswordPolicy(t *testing.T) {
	for _, c := range []struct {
		password string
		ok       bool
	}{
		{strings.Repeat("a", 11), false},
		{strings.Repeat("a", 12), true}, // no composition rules
		{"ünïcödé pässwörd", true},
		{strings.Repeat("x", accounts.MaxPasswordLen), true},
		{strings.Repeat("x", accounts.MaxPasswordLen+1), false},
	} {
		err := accounts.CheckPassword(c.password)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, accounts.ErrPasswordPolicy) {
			t.Errorf("%d bytes: err=%v, want ok=%v", len(c.password), err, c.ok)
		}
	}
}

func TestReadPassword(t *testing.T) {
	for _, c := range []struct {
		in, want string
		err      error
	}{
		{password + "\n", password, nil},
		{password + "\r\n", password, nil},
		{password, password, nil},
		{password + "\nsecond line\n", password, nil},
		{"short\n", "", accounts.ErrPasswordPolicy},
		{strings.Repeat("x", accounts.MaxPasswordLen) + "\n", strings.Repeat("x", accounts.MaxPasswordLen), nil},
		{strings.Repeat("x", 10*accounts.MaxPasswordLen), "", accounts.ErrPasswordPolicy},
	} {
		got, err := accounts.ReadPassword(strings.NewReader(c.in))
		if got != c.want || !errors.Is(err, c.err) {
			t.Errorf("ReadPassword(%s) = %d bytes, %v; want %d bytes, %v", describe(c.in), len(got), err, len(c.want), c.err)
		}
	}
}

func describe(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%d bytes", len(s))
	}
	return fmt.Sprintf("%q", s)
}
