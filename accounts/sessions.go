package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
)

// Sessions are what a person signs in for: a secret in a cookie, known to
// every API replica because it lives in a JetStream KV bucket, not in a
// process. Following OWASP's session management guidance, the secret is
// 256 random bits, made anew at every sign-in, and the bucket holds only
// its SHA-256: a copy of the bucket signs no one in. A session ends after
// an idle lifetime without use or an absolute lifetime since sign-in,
// whichever comes first.
//
// The bucket holds two kinds of keys:
//
//	s.<hash>         the session: its user, when it began, when last seen
//	u.<user>.<hash>  the index of a user's sessions, for EndAll
const (
	// SessionsBucket is the KV bucket of sessions.
	SessionsBucket = "prism_sessions"

	DefaultSessionIdle = 12 * time.Hour
	DefaultSessionMax  = 7 * 24 * time.Hour

	sessionBytes = 32
	// SessionSecretLen is the length of a session secret: 32 bytes in
	// unpadded base64url.
	SessionSecretLen = 43
	// sessionTouch is how stale a session's last-seen time may get: a
	// lookup writes it at most this often, not on every request.
	sessionTouch = time.Minute
)

// ErrInvalidSession is a session secret that is malformed, unknown,
// ended, expired, or whose user is disabled or gone.
var ErrInvalidSession = errors.New("invalid or expired session")

// Session is a signed-in session as stored: never its secret.
type Session struct {
	ID        string // the hex SHA-256 of the secret: safe to show and log
	UserID    string
	CreatedAt time.Time
	SeenAt    time.Time // updated at most once a minute
	// ExpiresAt is when the session ends unless it is used again before:
	// the idle lifetime after SeenAt, capped by the absolute lifetime.
	ExpiresAt time.Time
}

// SessionConfig configures Sessions.
type SessionConfig struct {
	Bucket   string        // "" = SessionsBucket
	Idle     time.Duration // 0 = DefaultSessionIdle
	Max      time.Duration // 0 = DefaultSessionMax
	Replicas int           // the bucket's replicas (streams.Topology); 0 = 1
	// Now is the clock lifetimes are measured with; nil = time.Now.
	Now func() time.Time
}

// Sessions stores sessions in a JetStream KV bucket and checks their
// users in PostgreSQL.
type Sessions struct {
	kv        jetstream.KeyValue
	users     *Users
	idle, max time.Duration
	now       func() time.Time
}

// sessionRecord is the stored value of s.<hash>.
type sessionRecord struct {
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"`
}

// SessionsBucketConfig is the sessions bucket: `prism setup` creates it,
// every API replica binds it with OpenSessions.
func SessionsBucketConfig(cfg SessionConfig) jetstream.KeyValueConfig {
	cfg = cfg.withDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "signed-in sessions (keys are SHA-256 of the secrets) and each user's index of them",
		History:     1,
		// Sessions outlive a NATS restart: file storage. Every key ages
		// out one absolute lifetime after its last write; by then the
		// session has expired anyway (lookups check both lifetimes).
		Storage:  jetstream.FileStorage,
		TTL:      cfg.Max + sessionTouch,
		Replicas: cfg.Replicas,
	}
}

// OpenSessions binds the sessions bucket (SessionsBucketConfig), which
// must exist.
func OpenSessions(ctx context.Context, js jetstream.JetStream, users *Users, cfg SessionConfig) (*Sessions, error) {
	cfg = cfg.withDefaults()
	if cfg.Idle > cfg.Max {
		return nil, fmt.Errorf("sessions: idle lifetime %s exceeds the absolute lifetime %s", cfg.Idle, cfg.Max)
	}
	kv, err := jsbind.KeyValue(ctx, js, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("open sessions: %w", err)
	}
	return &Sessions{kv: kv, users: users, idle: cfg.Idle, max: cfg.Max, now: cfg.Now}, nil
}

func (c SessionConfig) withDefaults() SessionConfig {
	if c.Bucket == "" {
		c.Bucket = SessionsBucket
	}
	if c.Idle <= 0 {
		c.Idle = DefaultSessionIdle
	}
	if c.Max <= 0 {
		c.Max = DefaultSessionMax
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Idle and Max are the lifetimes sessions are held to.
func (s *Sessions) Idle() time.Duration { return s.idle }
func (s *Sessions) Max() time.Duration  { return s.max }

// sessionHash is how a secret is stored and looked up.
func sessionHash(secret string) string { return HashToken(secret) }

func sessionKey(hash string) string     { return "s." + hash }
func indexKey(user, hash string) string { return "u." + user + "." + hash }
func indexFilter(user string) string    { return "u." + user + ".*" }
func hashOfIndexKey(key string) string  { return key[strings.LastIndexByte(key, '.')+1:] }
func (r sessionRecord) session(hash string, idle, max time.Duration) Session {
	exp := r.Seen.Add(idle)
	if end := r.Created.Add(max); end.Before(exp) {
		exp = end
	}
	return Session{ID: hash, UserID: r.User, CreatedAt: r.Created, SeenAt: r.Seen, ExpiresAt: exp}
}

// Create begins a session for the user with userID and returns its
// secret, which is not stored and goes to the client alone, with the
// session. Callers authenticate the user first (Users.Authenticate).
func (s *Sessions) Create(ctx context.Context, userID string) (string, Session, error) {
	if err := streams.ValidToken(userID); err != nil {
		return "", Session{}, fmt.Errorf("create session: user %w", err)
	}
	b := make([]byte, sessionBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Session{}, fmt.Errorf("session secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	hash := sessionHash(secret)
	now := s.now().UTC()
	rec := sessionRecord{User: userID, Created: now, Seen: now}
	raw, _ := json.Marshal(rec)
	// The index first: EndAll must never miss a session that exists.
	if _, err := s.kv.Put(ctx, indexKey(userID, hash), nil); err != nil {
		return "", Session{}, fmt.Errorf("create session of user %s: %w", userID, err)
	}
	if _, err := s.kv.Create(ctx, sessionKey(hash), raw); err != nil {
		return "", Session{}, fmt.Errorf("create session of user %s: %w", userID, err)
	}
	return secret, rec.session(hash, s.idle, s.max), nil
}

// Lookup returns the session whose secret this is and its user. Anything
// that must not be honoured is ErrInvalidSession, with the cause in the
// message for logs; an expired session is ended on the way. The user is
// read from PostgreSQL on every call, so disabling a user takes effect at
// once whatever happens to the bucket.
func (s *Sessions) Lookup(ctx context.Context, secret string) (User, Session, error) {
	if !wellFormedSecret(secret) {
		return User{}, Session{}, fmt.Errorf("%w: malformed", ErrInvalidSession)
	}
	hash := sessionHash(secret)
	entry, err := s.kv.Get(ctx, sessionKey(hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return User{}, Session{}, fmt.Errorf("%w: unknown or ended", ErrInvalidSession)
	}
	if err != nil {
		return User{}, Session{}, fmt.Errorf("look up session: %w", err)
	}
	var rec sessionRecord
	if err := json.Unmarshal(entry.Value(), &rec); err != nil || streams.ValidToken(rec.User) != nil {
		return User{}, Session{}, fmt.Errorf("%w: session %s unreadable", ErrInvalidSession, hash)
	}
	sess := rec.session(hash, s.idle, s.max)
	now := s.now()
	if !now.Before(sess.ExpiresAt) {
		if err := s.end(ctx, rec.User, hash); err != nil {
			return User{}, Session{}, err
		}
		return User{}, Session{}, fmt.Errorf("%w: session %s expired", ErrInvalidSession, hash)
	}
	usr, err := s.users.GetByID(ctx, rec.User)
	if errors.Is(err, ErrUserNotFound) {
		return User{}, Session{}, fmt.Errorf("%w: session %s: user gone", ErrInvalidSession, hash)
	}
	if err != nil {
		return User{}, Session{}, fmt.Errorf("look up session %s: %w", hash, err)
	}
	if usr.Disabled() {
		return User{}, Session{}, fmt.Errorf("%w: session %s: user disabled", ErrInvalidSession, hash)
	}
	if now.Sub(rec.Seen) >= sessionTouch {
		rec.Seen = now.UTC()
		raw, _ := json.Marshal(rec)
		// On the revision read: a replica that refreshed it meanwhile
		// wins, and a session ended meanwhile is not brought back.
		_, err := s.kv.Update(ctx, sessionKey(hash), raw, entry.Revision())
		if err != nil && !quota.Conflict(err) {
			return User{}, Session{}, fmt.Errorf("refresh session %s: %w", hash, err)
		}
		sess = rec.session(hash, s.idle, s.max)
	}
	return usr, sess, nil
}

// End ends the session whose secret this is, on every replica. Ending an
// unknown or ended session does nothing.
func (s *Sessions) End(ctx context.Context, secret string) error {
	if !wellFormedSecret(secret) {
		return nil
	}
	hash := sessionHash(secret)
	entry, err := s.kv.Get(ctx, sessionKey(hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	var rec sessionRecord
	_ = json.Unmarshal(entry.Value(), &rec) // an unreadable record is ended all the same
	return s.end(ctx, rec.User, hash)
}

func (s *Sessions) end(ctx context.Context, user, hash string) error {
	if err := s.kv.Delete(ctx, sessionKey(hash)); err != nil {
		return fmt.Errorf("end session %s: %w", hash, err)
	}
	if streams.ValidToken(user) == nil {
		if err := s.kv.Delete(ctx, indexKey(user, hash)); err != nil {
			return fmt.Errorf("end session %s: drop it from the index of user %s: %w", hash, user, err)
		}
	}
	return nil
}

// EndAll ends every session of the user with userID and returns how many
// it ended.
func (s *Sessions) EndAll(ctx context.Context, userID string) (int, error) {
	return endAll(ctx, s.kv, userID)
}

// EndUserSessions ends every session of the user with userID in the
// sessions bucket of js, for commands that change a user outside the API
// (prism user disable, prism user passwd). It does not create the
// bucket: where there is none, there are no sessions to end.
func EndUserSessions(ctx context.Context, js jetstream.JetStream, bucket, userID string) (int, error) {
	if bucket == "" {
		bucket = SessionsBucket
	}
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("open sessions bucket %s: %w", bucket, err)
	}
	return endAll(ctx, kv, userID)
}

func endAll(ctx context.Context, kv jetstream.KeyValue, userID string) (int, error) {
	if err := streams.ValidToken(userID); err != nil {
		return 0, fmt.Errorf("end sessions: user %w", err)
	}
	keys, err := kv.ListKeysFiltered(ctx, indexFilter(userID))
	if err != nil {
		return 0, fmt.Errorf("list sessions of user %s: %w", userID, err)
	}
	defer func() { _ = keys.Stop() }()
	n := 0
	for key := range keys.Keys() {
		hash := hashOfIndexKey(key)
		if err := kv.Delete(ctx, sessionKey(hash)); err != nil {
			return n, fmt.Errorf("end session %s of user %s: %w", hash, userID, err)
		}
		if err := kv.Delete(ctx, key); err != nil {
			return n, fmt.Errorf("end session %s of user %s: %w", hash, userID, err)
		}
		n++
	}
	if err := ctx.Err(); err != nil {
		return n, fmt.Errorf("end sessions of user %s: %w", userID, err) // the listing stopped short
	}
	return n, nil
}

// CSRFToken is the token a client signed in with the session secret must
// echo in a header on every change it asks for. It is derived from the
// secret, so every replica can check it without storing it, and it tells
// nothing about the secret.
func CSRFToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("prism csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports, in constant time, whether token is the CSRF token of
// the session secret.
func CheckCSRF(secret, token string) bool {
	return token != "" && hmac.Equal([]byte(CSRFToken(secret)), []byte(token))
}

func wellFormedSecret(secret string) bool {
	if len(secret) != SessionSecretLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(secret)
	return err == nil
}
