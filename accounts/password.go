package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password length bounds, in bytes (NIST SP 800-63B: at least 8, and no
// composition rules; we ask for 12). The upper bound keeps hashing cheap
// for hostile input while allowing any passphrase.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 1024
)

// Params are argon2id's cost parameters. They are stored with every hash,
// so raising them later leaves old hashes verifiable (see NeedsRehash).
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultParams are the OWASP Password Storage Cheat Sheet's argon2id
// recommendation (19 MiB, 2 passes, 1 lane) with a 16-byte salt and a
// 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on parameters read back from a stored hash: a hostile or corrupt
// hash string must not make a sign-in allocate gigabytes or spin for
// minutes. They leave room to raise DefaultParams several times over.
const (
	maxMemory  = 256 << 10 // KiB: 256 MiB
	maxTime    = 16
	maxThreads = 16
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 64
	maxHashLen = 256 // characters of the whole PHC string
)

// CheckPassword applies the password policy: MinPasswordLen to
// MaxPasswordLen bytes, nothing more.
func CheckPassword(password string) error {
	switch n := len(password); {
	case n < MinPasswordLen:
		return fmt.Errorf("%w: %d bytes, at least %d are needed", ErrPasswordPolicy, n, MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Errorf("%w: %d bytes, at most %d are allowed", ErrPasswordPolicy, n, MaxPasswordLen)
	}
	return nil
}

// HashPassword returns password's argon2id hash with a fresh random salt,
// as a PHC string: $argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>.
func HashPassword(password string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string hash,
// comparing in constant time. A malformed hash, or one whose parameters
// are out of bounds, is an error wrapping ErrMalformedHash.
func VerifyPassword(password, hash string) (bool, error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// NeedsRehash reports whether hash was made with weaker parameters than
// want (or cannot be read): the caller holding the password after a
// successful sign-in should store a new hash.
func NeedsRehash(hash string, want Params) bool {
	h, err := parsePHC(hash)
	if err != nil {
		return true
	}
	p := h.params
	return p.Memory < want.Memory || p.Time < want.Time || p.Threads < want.Threads ||
		p.SaltLen < want.SaltLen || p.KeyLen < want.KeyLen
}

// check reports parameters HashPassword must not use: those a stored
// hash could not be verified with.
func (p Params) check() error {
	if p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime ||
		p.Threads < 1 || p.Threads > maxThreads || p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen ||
		p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		return fmt.Errorf("argon2id parameters %+v: out of bounds", p)
	}
	return nil
}

type phc struct {
	params    Params
	salt, key []byte
}

// parsePHC reads an argon2id PHC string, refusing anything but the one
// form HashPassword writes and parameters outside the bounds above, all
// before any argon2 work or allocation proportional to the parameters.
func parsePHC(s string) (phc, error) {
	bad := func(why string) (phc, error) { return phc{}, fmt.Errorf("%w: %s", ErrMalformedHash, why) }
	if len(s) > maxHashLen {
		return bad("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("not $argon2id$v=..$m=..,t=..,p=..$salt$key")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version " + strconv.Quote(parts[2]))
	}
	var m, t, p uint64
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return bad("want m=..,t=..,p=..")
	}
	for i, f := range []struct {
		name string
		dst  *uint64
		max  uint64
	}{{"m", &m, maxMemory}, {"t", &t, maxTime}, {"p", &p, maxThreads}} {
		v, ok := strings.CutPrefix(fields[i], f.name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || n > f.max || v != strconv.FormatUint(n, 10) {
			return bad(fmt.Sprintf("parameter %s out of bounds (at most %d)", f.name, f.max))
		}
		*f.dst = n
	}
	b64 := base64.RawStdEncoding.Strict()
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return bad("salt is not base64")
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil {
		return bad("key is not base64")
	}
	h := phc{params: Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}, salt: salt, key: key}
	if err := h.params.check(); err != nil {
		return bad(err.Error())
	}
	return h, nil
}
