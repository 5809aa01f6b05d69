package persist

import (
	"context"
	"fmt"

	"github.com/aiprism/prism/persist/migrations"
	"github.com/aiprism/prism/platform/config"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is the persist role's configuration.
type Config struct {
	DatabaseURL string // DATABASE_URL, required
	Concurrency int    // PERSIST_CONCURRENCY: events projected at once by this process
	MaxConns    int    // PERSIST_DB_MAX_CONNS: pool size; defaults to concurrency + 2
	Migrate     bool   // PERSIST_MIGRATE: apply schema migrations at start
}

// ConfigFromEnv reads Config; problems are recorded on l (check l.Err()).
func ConfigFromEnv(l *config.Loader) Config {
	c := Config{
		DatabaseURL: l.Required("DATABASE_URL", "a PostgreSQL URL, e.g. postgres://user:pass@host:5432/prism"),
		Concurrency: l.Int("PERSIST_CONCURRENCY", 8, 1, 1024),
		Migrate:     l.Bool("PERSIST_MIGRATE", true),
	}
	c.MaxConns = l.Int("PERSIST_DB_MAX_CONNS", c.Concurrency+2, 1, 10000)
	if c.DatabaseURL != "" {
		_, err := pgxpool.ParseConfig(c.DatabaseURL)
		// The parse error may quote the URL, password included: not echoed.
		l.Check(err == nil, "DATABASE_URL", "a valid PostgreSQL connection string (postgres://user:pass@host:5432/db)")
	}
	return c
}

// Open connects a pool sized by c, checks the connection and, when
// c.Migrate is set, applies the schema migrations.
func (c Config) Open(ctx context.Context) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	if c.MaxConns > 0 {
		pc.MaxConns = int32(c.MaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	if c.Migrate {
		if err := migrations.Migrate(ctx, pool); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}
