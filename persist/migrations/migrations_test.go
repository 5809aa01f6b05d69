package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/aiprism/prism/persist/migrations"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
		"chat_sessions", "chat_events", "chat_messages", "webhook_subscriptions", "webhook_deliveries"} {
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

// Owner ids reach NATS subjects and object keys, so every table holding
// one refuses a value that is not one subject token of [A-Za-z0-9_-]: no
// '.', '*', '>' or whitespace. Each table is tried with a row that is
// valid but for its owner.
func TestOwnerColumnsRefuseNonTokens(t *testing.T) {
	ctx := context.Background()
	pool := open(t, testenv.Postgres(t))
	if err := migrations.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// Parents of the rows below, owned by a valid owner.
	if _, err := pool.Exec(ctx, `
		INSERT INTO documents (id, owner, status, status_rank, run, uploaded_at, updated_at) VALUES ('d0', 'alice', 'uploaded', 10, 1, now(), now());
		INSERT INTO chat_sessions (id, owner, updated_at) VALUES ('s0', 'alice', now());
		INSERT INTO webhook_subscriptions (id, owner, url, secret) VALUES ('w0', 'alice', 'https://example.com/hook', 'x')`); err != nil {
		t.Fatal(err)
	}
	inserts := map[string]string{
		"documents":             `INSERT INTO documents (id, owner, status, status_rank, run, uploaded_at, updated_at) VALUES ($1, $2, 'uploaded', 10, 1, now(), now())`,
		"document_events":       `INSERT INTO document_events (event_id, document_id, owner, run, type, occurred_at) VALUES ($1, 'd0', $2, 1, 'uploaded', now())`,
		"assessments":           `INSERT INTO assessments (document_id, run, owner, result, score, risk_level, created_at) VALUES ('d0', abs(hashtext($1)), $2, '{}', 1, 'low', now())`,
		"chat_sessions":         `INSERT INTO chat_sessions (id, owner, updated_at) VALUES ($1, $2, now())`,
		"chat_events":           `INSERT INTO chat_events (stream_seq, session_id, owner, event_id, type, data, occurred_at) VALUES (abs(hashtext($1)), 's0', $2, $1, 'created', '{}', now())`,
		"chat_messages":         `INSERT INTO chat_messages (session_id, id, owner, position, role, status, created_at) VALUES ('s0', $1, $2, 0, 'user', 'sent', now())`,
		"webhook_subscriptions": `INSERT INTO webhook_subscriptions (id, owner, url, secret) VALUES ($1, $2, 'https://example.com/hook', 'x')`,
		"webhook_deliveries":    `INSERT INTO webhook_deliveries (subscription_id, owner, event_id, event_type) VALUES ('w0', $2, $1, 'uploaded')`,
		"exports":               `INSERT INTO exports (id, owner, format, object_key, rows, size_bytes) VALUES ($1, $2, 'csv', 'k', 0, 0)`,
	}
	bad := []string{"a.b", "a*", ">", "alice.>", "a b", "a\tb", "a\nb", " alice", "", strings.Repeat("a", 65), "ålice"}
	for table, insert := range inserts {
		for i, owner := range bad {
			_, err := pool.Exec(ctx, insert, fmt.Sprintf("%s-bad-%d", table, i), owner)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
				t.Errorf("%s accepted owner %q (err %v), want a check violation", table, owner, err)
			}
		}
		for i, owner := range []string{"alice", "01J9ZK3V4T9Q-x_Y", strings.Repeat("a", 64)} {
			if _, err := pool.Exec(ctx, insert, fmt.Sprintf("%s-good-%d", table, i), owner); err != nil {
				t.Errorf("%s refused owner %q: %v", table, owner, err)
			}
		}
	}
	// Every owner column of the schema is covered: a table added later
	// with an owner column and no check fails here.
	rows, err := pool.Query(ctx, `SELECT c.table_name FROM information_schema.columns c
		WHERE c.table_schema = 'public' AND c.column_name = 'owner' AND NOT EXISTS (
			SELECT 1 FROM pg_constraint k WHERE k.conrelid = (quote_ident(c.table_name))::regclass AND k.contype = 'c'
			AND pg_get_constraintdef(k.oid) LIKE '%owner ~ %[A-Za-z0-9\_-]{1,64}$%')`)
	if err != nil {
		t.Fatal(err)
	}
	unchecked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(unchecked) > 0 {
		t.Fatalf("owner columns without the subject-token check: %v", unchecked)
	}
	for table := range inserts {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'owner'`, table).Scan(&n); err != nil || n != 1 {
			t.Fatalf("table %s has no owner column (%d, %v)", table, n, err)
		}
	}
}
