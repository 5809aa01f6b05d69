package persist

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Projector applies events to the read model.
type Projector struct {
	pool *pgxpool.Pool
	log  zerolog.Logger
}

// New returns a Projector writing to pool.
func New(pool *pgxpool.Pool, log zerolog.Logger) *Projector {
	return &Projector{pool: pool, log: log.With().Str("role", "persist").Logger()}
}

// Handle applies one event in its own transaction and returns nil only once
// it is committed; it is a streams.Handler. Events that can never be
// projected are streams.Permanent; database trouble is transient.
func (p *Projector) Handle(ctx context.Context, ev *streams.Event) error {
	return p.HandleBatch(ctx, []*streams.Event{ev})
}

// HandleBatch applies evs in one transaction: all or none. One permanent
// failure fails the whole batch, so a caller batching events should fall
// back to Handle per event to isolate it.
func (p *Projector) HandleBatch(ctx context.Context, evs []*streams.Event) error {
	if len(evs) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return Project(ctx, tx, evs) })
	return classify(err)
}

// classify marks the errors no retry will fix as permanent.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, errBadEvent):
		return streams.Permanent(streams.ClassBadEvent, err)
	case errors.Is(err, errOwnerMismatch):
		return streams.Permanent(streams.ClassOwnerMismatch, err)
	case errors.As(err, &pgErr) && (pgErr.Code[:2] == "22" || pgErr.Code[:2] == "23"):
		// Data exceptions (e.g. a NUL byte in a string) and constraint
		// violations fail the same way on every delivery.
		return streams.Permanent(streams.ClassDBRejected, err)
	}
	return err
}

type runConfig struct {
	consumer streams.Consumer
	opts     streams.RunnerOptions
	batch    int
}

// RunOption configures Run.
type RunOption func(*runConfig)

// WithConcurrency sets how many events this process projects at once.
func WithConcurrency(n int) RunOption { return func(c *runConfig) { c.opts.Concurrency = n } }

// WithMetrics measures the consumer.
func WithMetrics(m *streams.RunnerMetrics) RunOption {
	return func(c *runConfig) { c.opts.Metrics = m }
}

// WithBackoff sets the redelivery delay after a transient failure.
func WithBackoff(f func(n uint64) time.Duration) RunOption {
	return func(c *runConfig) { c.opts.Backoff = f }
}

// WithBatch sets the most events applied in one transaction.
func WithBatch(n int) RunOption { return func(c *runConfig) { c.batch = n } }

// WithConsumer replaces streams.PersistConsumer, e.g. with shorter timings
// in tests or another durable name for a rebuild into a fresh database.
func WithConsumer(cons streams.Consumer) RunOption { return func(c *runConfig) { c.consumer = cons } }

// Run projects the persist consumer's events until ctx ends, then drains.
// Events are applied in batches, one transaction (one commit) per batch; a
// batch that fails is retried event by event, so a bad event is isolated.
// Concurrent batches are safe: see Project.
func (p *Projector) Run(ctx context.Context, js jetstream.JetStream, opts ...RunOption) error {
	rc := runConfig{consumer: streams.PersistConsumer, opts: streams.RunnerOptions{Concurrency: 8, Log: p.log}, batch: 100}
	for _, o := range opts {
		o(&rc)
	}
	if err := streams.RunBatch(ctx, js, rc.consumer, p.HandleBatch, p.Handle, streams.BatchOptions{
		RunnerOptions: rc.opts, Size: rc.batch, Wait: 5 * time.Millisecond,
	}); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}
