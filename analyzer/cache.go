package analyzer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cache remembers model answers by the sha256 of the text and the prompt
// version, with the model that gave the answer stored in the entry, so a
// redelivered event, a re-upload of the same content or a retried chunk
// never pays for the same call twice. One key per text keeps a lookup to
// one read, whichever model answered. It lives in a JetStream KV bucket on
// file storage: it survives restarts and is shared by every replica.
type Cache struct {
	kv jetstream.KeyValue
}

// OpenCache creates or binds the result cache bucket.
func OpenCache(ctx context.Context, js jetstream.JetStream, bucket string, replicas int, ttl time.Duration) (*Cache, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "analyzer results by text sha256, prompt version and model",
		History:     1,
		TTL:         ttl,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxBytes:    1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("open result cache %s: %w", bucket, err)
	}
	return &Cache{kv: kv}, nil
}

func cacheKey(kind, textSHA, promptVersion string) string {
	return kind + "." + textSHA + "." + promptVersion
}

// TextSHA256 is the cache's name for a text.
func TextSHA256(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// Get looks up a cached answer into v.
func (c *Cache) Get(ctx context.Context, kind, textSHA, promptVersion string, v any) (bool, error) {
	if c == nil {
		return false, nil
	}
	e, err := c.kv.Get(ctx, cacheKey(kind, textSHA, promptVersion))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read result cache: %w", err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return false, nil // an unreadable entry is a miss, not a failure
	}
	return true, nil
}

// Put stores an answer; v carries the model that gave it.
func (c *Cache) Put(ctx context.Context, kind, textSHA, promptVersion string, v any) error {
	if c == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode cached result: %w", err)
	}
	if _, err := c.kv.Put(ctx, cacheKey(kind, textSHA, promptVersion), raw); err != nil {
		return fmt.Errorf("write result cache: %w", err)
	}
	return nil
}
