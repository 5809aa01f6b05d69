// Package jsbind binds a role to the JetStream assets (streams, durable
// consumers, key-value buckets) that `prism setup` creates. Roles run with
// NATS users that may not create or change assets, so they only look
// assets up; one that is missing is reported as such, naming it and the
// command that makes it, rather than as a bare "not found".
//
// The creating side lives here too (CreateKeyValues), so that setup and
// the tests that make assets with admin rights go through one path.
package jsbind

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotSetUp matches every MissingError.
var ErrNotSetUp = errors.New("JetStream asset not set up")

// MissingError is an asset a role needs that does not exist on the server.
type MissingError struct {
	Kind string // "stream", "consumer", "key-value bucket"
	Name string
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("JetStream %s %s does not exist: run `prism setup` with the NATS admin user before starting the roles", e.Kind, e.Name)
}

// Is makes errors.Is(err, ErrNotSetUp) true.
func (e *MissingError) Is(target error) bool { return target == ErrNotSetUp }

// KeyValue binds the bucket, which must exist.
func KeyValue(ctx context.Context, js jetstream.JetStream, bucket string) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, &MissingError{Kind: "key-value bucket", Name: bucket}
	}
	if err != nil {
		return nil, fmt.Errorf("bind key-value bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// Stream binds the stream, which must exist.
func Stream(ctx context.Context, js jetstream.JetStream, name string) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, &MissingError{Kind: "stream", Name: name}
	}
	if err != nil {
		return nil, fmt.Errorf("bind stream %s: %w", name, err)
	}
	return st, nil
}

// Consumer binds the durable consumer of stream, which must exist.
func Consumer(ctx context.Context, js jetstream.JetStream, stream, name string) (jetstream.Consumer, error) {
	c, err := js.Consumer(ctx, stream, name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, &MissingError{Kind: "stream", Name: stream}
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, &MissingError{Kind: "consumer", Name: stream + "/" + name}
	case err != nil:
		return nil, fmt.Errorf("bind consumer %s/%s: %w", stream, name, err)
	}
	return c, nil
}

// CreateKeyValues creates the buckets, or updates them to cfgs: it needs
// admin rights, and is safe to run again and from several processes at
// once (the server accepts a create identical to what exists).
func CreateKeyValues(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.KeyValueConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("create key-value bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// CreateStreams creates the streams, or updates them to cfgs, as
// CreateKeyValues does the buckets.
func CreateStreams(ctx context.Context, js jetstream.JetStream, cfgs ...jetstream.StreamConfig) error {
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
