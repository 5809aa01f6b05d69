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
	return p.inTx(ctx, evs, Project)
}

// inTx applies evs with project in one transaction, committed before it
// returns nil.
func (p *Projector) inTx(ctx context.Context, evs []*streams.Event, project func(context.Context, pgx.Tx, []*streams.Event) error) error {
	if len(evs) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return project(ctx, tx, evs) })
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
	consumer     streams.Consumer
	chatConsumer streams.Consumer
	opts         streams.RunnerOptions
	batch        int
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

// WithChatConsumer replaces streams.PersistChatConsumer, as WithConsumer
// does streams.PersistConsumer.
func WithChatConsumer(cons streams.Consumer) RunOption {
	return func(c *runConfig) { c.chatConsumer = cons }
}

// Run projects the persist consumers' events, DOCS and CHAT, until ctx
// ends, then drains. Events are applied in batches, one transaction (one
// commit) per batch; a batch that fails is retried event by event, so a
// bad event is isolated. Concurrent DOCS batches are safe: see Project.
//
// CHAT batches run one at a time in this process. Any order would give the
// same rows (see ProjectChat), but in stream order a session's last_seq
// is also a true watermark: every event of the session below it is in the
// rows, which is what a reader folding the events after it relies on.
// Chats are written at human pace; one batch of up to batch events at a
// time keeps up.
func (p *Projector) Run(ctx context.Context, js jetstream.JetStream, opts ...RunOption) error {
	rc := runConfig{consumer: streams.PersistConsumer, chatConsumer: streams.PersistChatConsumer,
		opts: streams.RunnerOptions{Concurrency: 8, Log: p.log}, batch: 100}
	for _, o := range opts {
		o(&rc)
	}
	chatOpts := rc.opts
	chatOpts.Concurrency = 1

	// If either consumer stops with an error, the other is stopped too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	run := func(c streams.Consumer, o streams.RunnerOptions, batch streams.BatchHandler, single streams.Handler) {
		err := streams.RunBatch(ctx, js, c, batch, single, streams.BatchOptions{RunnerOptions: o, Size: rc.batch, Wait: 5 * time.Millisecond})
		if err != nil {
			cancel()
			err = fmt.Errorf("persist %s: %w", c.Name, err)
		}
		errs <- err
	}
	go run(rc.consumer, rc.opts, p.HandleBatch, p.Handle)
	go run(rc.chatConsumer, chatOpts, p.HandleChatBatch, p.HandleChat)
	return errors.Join(<-errs, <-errs)
}
