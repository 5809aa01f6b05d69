package analyzer

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Cache remembers model answers by (sha256 of the text, prompt version,
// model), so a redelivered event, a re-upload of the same content or a
// retried chunk never pays for the same call twice. It lives in a JetStream
// KV bucket on file storage: it survives restarts and is shared by every
// replica.
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

var cacheEnc = base32.HexEncoding.WithPadding(base32.NoPadding)

func cacheKey(kind, textSHA, promptVersion, model string) string {
	return kind + "." + textSHA + "." + promptVersion + "." + cacheEnc.EncodeToString([]byte(model))
}

// TextSHA256 is the cache's name for a text.
func TextSHA256(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// Get looks up a cached answer for any of models, in their order, so the
// best model's answer wins. It returns the model it was found for.
func (c *Cache) Get(ctx context.Context, kind, textSHA, promptVersion string, models []string, v any) (string, bool, error) {
	if c == nil {
		return "", false, nil
	}
	for _, m := range models {
		e, err := c.kv.Get(ctx, cacheKey(kind, textSHA, promptVersion, m))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return "", false, fmt.Errorf("read result cache: %w", err)
		}
		if err := json.Unmarshal(e.Value(), v); err != nil {
			continue // an unreadable entry is a miss, not a failure
		}
		return m, true, nil
	}
	return "", false, nil
}

// Put stores an answer.
func (c *Cache) Put(ctx context.Context, kind, textSHA, promptVersion, model string, v any) error {
	if c == nil {
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode cached result: %w", err)
	}
	if _, err := c.kv.Put(ctx, cacheKey(kind, textSHA, promptVersion, model), raw); err != nil {
		return fmt.Errorf("write result cache: %w", err)
	}
	return nil
}
