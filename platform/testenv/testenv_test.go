package testenv_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestNATS(t *testing.T) {
	srv, nc, js := testenv.NATS(t)
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") || !nc.IsConnected() {
		t.Fatalf("url %q connected %v", srv.ClientURL(), nc.IsConnected())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil || string(msg.Data()) != "x" {
		t.Fatalf("next: %v", err)
	}
	if err := msg.Ack(); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

// The watched endpoint passes requests through, counts them by method and
// key, and answers a failed key with S3's error, which the SDK reports
// with its code and message.
func TestS3Watched(t *testing.T) {
	w := testenv.S3Watched(t)
	st := w.Store(t)
	ctx := t.Context()
	if _, err := st.Put(ctx, "dir/k", strings.NewReader("v"), 1, "text/plain"); err != nil {
		t.Fatalf("put: %v", err)
	}
	rc, _, err := st.Get(ctx, "dir/k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	raw, _ := io.ReadAll(rc)
	rc.Close()
	if string(raw) != "v" || w.Count(http.MethodGet, "dir/k") != 1 || w.Count(http.MethodPut, "dir/k") != 1 || w.Count(http.MethodGet, "other") != 0 {
		t.Fatalf("read %q; counted GET %d, PUT %d", raw, w.Count(http.MethodGet, "dir/k"), w.Count(http.MethodPut, "dir/k"))
	}
	w.Fail("dir/k", testenv.S3Error{Status: http.StatusForbidden, Code: "AccessDenied", Message: "watched-endpoint-says-no"})
	if _, _, err := st.Get(ctx, "dir/k"); err == nil || !strings.Contains(err.Error(), "watched-endpoint-says-no") || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("get of a failed key: %v, want S3's AccessDenied with its message", err)
	}
	if _, err := st.Head(ctx, "dir/k"); err == nil {
		t.Fatal("head of a failed key succeeded")
	}
}

func TestS3(t *testing.T) {
	st := testenv.S3(t)
	ctx := t.Context()
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if _, err := st.Put(ctx, "k", strings.NewReader("v"), 1, "text/plain"); err != nil {
		t.Fatalf("put: %v", err)
	}
	rc, info, err := st.Get(ctx, "k")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "v" || info.SSE != "AES256" {
		t.Fatalf("got %q, info %+v", b, info)
	}
}

func TestS3ProcessServesUntilTheTestEnds(t *testing.T) {
	var endpoint string
	t.Run("in use", func(t *testing.T) {
		cfg := testenv.S3ProcessConfig(t)
		endpoint = cfg.Endpoint
		st, err := blob.New(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Put(t.Context(), "k", strings.NewReader("v"), 1, "text/plain"); err != nil {
			t.Fatalf("put: %v", err)
		}
		rc, info, err := st.Get(t.Context(), "k")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		defer rc.Close()
		if b, _ := io.ReadAll(rc); string(b) != "v" || info.SSE != "AES256" {
			t.Fatalf("got %q, info %+v", b, info)
		}
	})
	// The child exits with the test that started it.
	if resp, err := http.Get(endpoint); err == nil {
		resp.Body.Close()
		t.Fatalf("%s still answers after its test ended", endpoint)
	}
}

func TestPostgresGivesFreshDatabases(t *testing.T) {
	a, b := testenv.Postgres(t), testenv.Postgres(t)
	if a == b {
		t.Fatalf("two calls returned the same DSN %s", a)
	}
	for _, dsn := range []string{a, b} {
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		var tables int
		err = conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
		if err != nil || tables != 0 {
			t.Fatalf("fresh database has %d tables (%v)", tables, err)
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE t (id int)"); err != nil {
			t.Fatalf("create table: %v", err)
		}
		// Left open on purpose: cleanup must still drop the database.
		_ = conn
	}
}

func TestPostgresDropsDatabaseAfterTest(t *testing.T) {
	var name, admin string
	t.Run("inner", func(t *testing.T) {
		dsn := testenv.Postgres(t)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
		admin = strings.Replace(dsn, "/"+name, "/postgres", 1)
	})
	conn, err := pgx.Connect(t.Context(), admin)
	if err != nil {
		t.Fatalf("connect admin: %v", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil || exists {
		t.Fatalf("database %s still exists (%v)", name, err)
	}
}

func TestPostgresOnExistingServer(t *testing.T) {
	// Use the local cluster as the "existing server".
	dsn := testenv.Postgres(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(testenv.DatabaseURLEnv, strings.Replace(dsn, "/"+cfg.Database, "/postgres", 1))
	other := testenv.Postgres(t)
	conn, err := pgx.Connect(t.Context(), other)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	var db string
	if err := conn.QueryRow(t.Context(), "SELECT current_database()").Scan(&db); err != nil || !strings.HasPrefix(db, "test_testpostgresonexistingserver_") {
		t.Fatalf("current_database = %q (%v)", db, err)
	}
}
