package analyzer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/nats-io/nats.go/jetstream"
)

// Cache remembers model answers by (scope, sha256 of the text, prompt
// version, model), so a redelivered event, a re-upload of the same content
// or a retried chunk never pays for the same call twice. The scope is the
// owner whose document the answer was for, or "" for answers shared by
// every owner (see CacheScopeShared). A lookup takes the
// newest answer any model of the chain gave for the text and prompt, in
// one read (a direct get of the last message under the key's wildcard),
// not one read per model. It lives in a JetStream KV bucket on file
// storage: it survives restarts and is shared by every replica.
type Cache struct {
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream, for the wildcard lookup
}

// CacheBucketConfig is the result cache bucket: `prism setup` creates it,
// the analyzers bind it with OpenCache.
func CacheBucketConfig(bucket string, replicas int, ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "analyzer results by text sha256, prompt version and model",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		MaxBytes:    1 << 30,
	}
}

// OpenCache binds the result cache bucket (CacheBucketConfig), which must
// exist.
func OpenCache(ctx context.Context, js jetstream.JetStream, bucket string) (*Cache, error) {
	kv, err := jsbind.KeyValue(ctx, js, bucket)
	if err != nil {
		return nil, fmt.Errorf("open result cache: %w", err)
	}
	stream, err := jsbind.Stream(ctx, js, "KV_"+bucket)
	if err != nil {
		return nil, fmt.Errorf("open result cache: %w", err)
	}
	return &Cache{kv: kv, stream: stream}, nil
}

// cacheKey is the entry of one model's answer; model "*" is every model's.
// A scoped key has one token more than a shared one, so a wildcard lookup
// in one scope never matches an entry of another, nor a shared one.
func cacheKey(kind, scope, textSHA, promptVersion, model string) string {
	if model != "*" {
		model = router.KeyToken(model)
	}
	if scope != "" {
		kind += "." + scope
	}
	return kind + "." + textSHA + "." + promptVersion + "." + model
}

// TextSHA256 is the cache's name for a text.
func TextSHA256(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// Get looks up the newest cached answer in scope (an owner id, or "" for
// shared answers) for the text and prompt version, whichever model gave
// it, into v.
func (c *Cache) Get(ctx context.Context, kind, scope, textSHA, promptVersion string, v any) (bool, error) {
	if c == nil {
		return false, nil
	}
	msg, err := c.stream.GetLastMsgForSubject(ctx, "$KV."+c.kv.Bucket()+"."+cacheKey(kind, scope, textSHA, promptVersion, "*"))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read result cache: %w", err)
	}
	if msg.Header.Get("KV-Operation") != "" || json.Unmarshal(msg.Data, v) != nil {
		return false, nil // deleted, or unreadable: a miss, not a failure
	}
	return true, nil
}

// Put stores model's answer v in scope.
func (c *Cache) Put(ctx context.Context, kind, scope, textSHA, promptVersion, model string, v any) error {
	if c == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode cached result: %w", err)
	}
	if _, err := c.kv.Put(ctx, cacheKey(kind, scope, textSHA, promptVersion, model), raw); err != nil {
		return fmt.Errorf("write result cache: %w", err)
	}
	return nil
}
