// Package persisttest gives tests a PostgreSQL database of their own with
// the schema applied (see platform/testenv for the server).
package persisttest

import (
	"context"
	"testing"

	"github.com/aiprism/prism/persist/migrations"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB returns a pool on a fresh, migrated database, closed when tb ends.
func DB(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, testenv.Postgres(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if err := migrations.Migrate(ctx, pool); err != nil {
		tb.Fatal(err)
	}
	return pool
}
