package migrations_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/aiprism/prism/persist/migrations"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func open(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

type applied struct {
	Version  int
	Checksum string
	At       string
}

func appliedRows(t *testing.T, pool *pgxpool.Pool) []applied {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT version, checksum, applied_at::text FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []applied
	for rows.Next() {
		var a applied
		if err := rows.Scan(&a.Version, &a.Checksum, &a.At); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMigrateTwiceIsANoop(t *testing.T) {
	ctx := context.Background()
	pool := open(t, testenv.Postgres(t))
	if err := migrations.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	first := appliedRows(t, pool)
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != len(all) || len(all) == 0 {
		t.Fatalf("applied %d migrations, embedded %d", len(first), len(all))
	}
	if err := migrations.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	second := appliedRows(t, pool)
	if len(second) != len(first) || second[0] != first[0] {
		t.Fatalf("second run changed schema_migrations: %v -> %v", first, second)
	}
	for _, table := range []string{"users", "api_tokens", "documents", "document_events", "assessments",
		"chat_sessions", "chat_messages", "webhook_subscriptions", "webhook_deliveries"} {
		var ok bool
		if err := pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing (%v)", table, err)
		}
	}
}

func TestConcurrentMigrateAppliesEachVersionOnce(t *testing.T) {
	ctx := context.Background()
	dsn := testenv.Postgres(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		// A pool each, as separate processes would have.
		pool := open(t, dsn)
		wg.Go(func() { errs[i] = migrations.Migrate(ctx, pool) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	all, _ := migrations.All()
	if got := appliedRows(t, open(t, dsn)); len(got) != len(all) {
		t.Fatalf("schema_migrations has %d rows, want %d", len(got), len(all))
	}
}

func TestEditedAppliedMigrationIsReported(t *testing.T) {
	ctx := context.Background()
	pool := open(t, testenv.Postgres(t))
	ms, err := migrations.Load(fstest.MapFS{
		"0001_one.sql": {Data: []byte("CREATE TABLE one (id int);")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.Apply(ctx, pool, ms); err != nil {
		t.Fatal(err)
	}
	edited, _ := migrations.Load(fstest.MapFS{
		"0001_one.sql": {Data: []byte("CREATE TABLE one (id bigint);")},
		"0002_two.sql": {Data: []byte("CREATE TABLE two (id int);")},
	})
	if err := migrations.Apply(ctx, pool, edited); !errors.Is(err, migrations.ErrChecksumMismatch) {
		t.Fatalf("edited migration: err = %v, want ErrChecksumMismatch", err)
	}
	var two bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('two') IS NOT NULL").Scan(&two); err != nil || two {
		t.Fatalf("migration after the mismatch was applied (%v)", err)
	}
}

func TestFailedMigrationLeavesNothingBehind(t *testing.T) {
	ctx := context.Background()
	pool := open(t, testenv.Postgres(t))
	ms, _ := migrations.Load(fstest.MapFS{
		"0001_ok.sql":  {Data: []byte("CREATE TABLE ok (id int);")},
		"0002_bad.sql": {Data: []byte("CREATE TABLE half (id int); SELECT no_such_function();")},
	})
	if err := migrations.Apply(ctx, pool, ms); err == nil {
		t.Fatal("broken migration applied")
	}
	var half bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('half') IS NOT NULL").Scan(&half); err != nil || half {
		t.Fatalf("half-applied migration left table behind (%v)", err)
	}
	if got := appliedRows(t, pool); len(got) != 1 || got[0].Version != 1 {
		t.Fatalf("applied = %v, want only version 1", got)
	}
}

func TestLoadRejectsBadFiles(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":     {"1_init.sql": {Data: []byte("")}},
		"dup versions": {"0001_a.sql": {Data: []byte("")}, "0001_b.sql": {Data: []byte("")}},
	} {
		if _, err := migrations.Load(fsys); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
