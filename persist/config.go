package persist

import (
	"context"

	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Config is the persist role's configuration. The database itself
// (DATABASE_URL, DB_MAX_CONNS) is opened by the process for every role
// that needs it, and its schema is applied by `prism migrate` (or
// `prism dev`), never by a role.
type Config struct {
	Concurrency int // PERSIST_CONCURRENCY: events projected at once by this process
}

// ConfigFromEnv reads Config; problems are recorded on l (check l.Err()).
func ConfigFromEnv(l *config.Loader) Config {
	return Config{Concurrency: l.Int("PERSIST_CONCURRENCY", 8, 1, 1024)}
}

// Deps are what the persist role works with, opened by its caller.
type Deps struct {
	JS       jetstream.JetStream
	Pool     *pgxpool.Pool
	Registry prometheus.Registerer
	Log      zerolog.Logger
}

// Role is the persist role: configured, wired, and started by Run.
type Role struct {
	cfg Config
	d   Deps
}

// NewRole returns the persist role; it starts nothing until Run.
func NewRole(cfg Config, d Deps) *Role { return &Role{cfg: cfg, d: d} }

// Run projects events into PostgreSQL until ctx ends.
func (r *Role) Run(ctx context.Context) error {
	return New(r.d.Pool, r.d.Log).Run(ctx, r.d.JS,
		WithConcurrency(r.cfg.Concurrency), WithMetrics(streams.NewRunnerMetrics(r.d.Registry)))
}
