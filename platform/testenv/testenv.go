// Package testenv gives tests in every module real infrastructure: an
// embedded NATS server with JetStream, a local S3 endpoint behind a
// blob.Store, and a fresh PostgreSQL database. Tests talk to the same
// kinds of parts production uses instead of mocks, at a cost of
// milliseconds per test (plus one PostgreSQL start per test binary).
//
// A package that uses Postgres should call Main from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/natsembed"
	"github.com/aiprism/prism/platform/pglocal"
	"github.com/aiprism/prism/platform/s3local"
)

// DatabaseURLEnv names an existing PostgreSQL server to create test
// databases on instead of starting a local cluster; the URL's role needs
// CREATEDB.
const DatabaseURLEnv = "PRISM_TEST_DATABASE_URL"

// TestBucket is the bucket S3 and S3Config create.
const TestBucket = "prism-test"

// setupTimeout bounds starting any piece (a cold PostgreSQL initdb
// included) and cleaning it up.
const setupTimeout = 60 * time.Second

// NATS starts an embedded NATS server with JetStream in a temporary
// directory, listening on a random loopback port (see ClientURL), and
// returns it with a connected client. Both are shut down when the test
// ends.
func NATS(t testing.TB) (*natsembed.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv, err := natsembed.Start(ctx, natsembed.Options{Dir: t.TempDir(), Port: natsembed.RandomPort, ServerName: "testenv"})
	if err != nil {
		t.Fatalf("testenv: start NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect(nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testenv: JetStream client: %v", err)
	}
	return srv, nc, js
}

// S3Config starts a local S3 endpoint with TestBucket in a temporary
// directory and returns the blob.Config that reaches it, for code under
// test that builds its own Store. The endpoint rejects writes without
// server-side encryption, like the production bucket policy. It stops
// when the test ends.
func S3Config(t testing.TB) blob.Config {
	t.Helper()
	return S3ConfigAt(serveS3(t).URL())
}

// serveS3 starts the local S3 store of S3Config and stops it when the test
// ends.
func serveS3(t testing.TB) *s3local.Server {
	t.Helper()
	srv, err := startS3(t.TempDir())
	if err != nil {
		t.Fatalf("testenv: start S3: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("testenv: stop S3: %v", err)
		}
	})
	return srv
}

// startS3 starts the local S3 store on dir with the test bucket, which
// rejects writes without server-side encryption.
func startS3(dir string) (*s3local.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	return s3local.Start(ctx, s3local.Options{Dir: dir, Buckets: []string{TestBucket}, RequireSSE: true})
}

// S3 returns a blob.Store on a fresh local S3 endpoint (see S3Config).
func S3(t testing.TB) *blob.Store {
	t.Helper()
	return storeAt(t, S3Config(t))
}

func storeAt(t testing.TB, cfg blob.Config) *blob.Store {
	t.Helper()
	st, err := blob.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("testenv: blob store: %v", err)
	}
	return st
}

// Postgres returns the DSN of a new, empty database that is dropped when
// the test ends. The server is the one named by PRISM_TEST_DATABASE_URL,
// or else a local cluster shared by the whole test binary (started on
// first use, fsync off, stopped by Main).
func Postgres(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(DatabaseURLEnv)
	if admin == "" {
		var err error
		if admin, err = localCluster(); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	name := databaseName(t.Name())
	if err := pglocal.CreateDatabase(ctx, admin, name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dsn
}

// Main runs the tests and then stops the local PostgreSQL cluster, if one
// was started, before exiting with the tests' status. Without it the
// server still dies with the test binary (pglocal asks the kernel for
// that) but its temporary directory is left behind. In the process
// S3ProcessConfig starts, Main serves S3 instead of running tests.
func Main(m *testing.M) {
	if dir, ok := os.LookupEnv(s3ChildEnv); ok {
		os.Exit(serveS3Child(dir)) // this process is S3ProcessConfig's store
	}
	code := m.Run()
	if err := stopLocalCluster(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// local is the test binary's shared PostgreSQL cluster. It is package
// state because it must outlive any single test (initdb and start-up cost
// about a second, CREATE DATABASE milliseconds) and Main must find it to
// stop it. The mutex, rather than sync.Once, lets Main stop it and keeps a
// failed start reported to every caller.
var local struct {
	mu      sync.Mutex
	cluster *pglocal.Cluster
	dir     string
	err     error
}

func localCluster() (string, error) {
	local.mu.Lock()
	defer local.mu.Unlock()
	if local.cluster != nil {
		return local.cluster.DSNFor("postgres"), nil
	}
	if local.err != nil {
		return "", local.err
	}
	// Not t.TempDir: the cluster outlives the test that starts it, and as
	// root the postgres user must be able to reach the directory.
	dir, err := os.MkdirTemp("", "prism-testpg-*")
	if err != nil {
		local.err = fmt.Errorf("create cluster directory: %w", err)
		return "", local.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	c, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Database: "postgres", Log: zerolog.Nop()})
	if err != nil {
		_ = os.RemoveAll(dir)
		local.err = fmt.Errorf("start local PostgreSQL (or set %s): %w", DatabaseURLEnv, err)
		return "", local.err
	}
	local.cluster, local.dir = c, dir
	return c.DSNFor("postgres"), nil
}

func stopLocalCluster() error {
	local.mu.Lock()
	defer local.mu.Unlock()
	if local.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	err := local.cluster.Stop(ctx)
	if rerr := os.RemoveAll(local.dir); rerr != nil && err == nil {
		err = rerr
	}
	local.cluster, local.dir = nil, ""
	if err != nil {
		return fmt.Errorf("stop local PostgreSQL: %w", err)
	}
	return nil
}

// databaseName derives a valid, unique database name from the test name,
// so leftovers on a shared server point at their test.
func databaseName(testName string) string {
	var b strings.Builder
	b.WriteString("test_")
	for _, r := range strings.ToLower(testName) {
		if b.Len() >= 40 {
			break
		}
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	b.WriteByte('_')
	b.WriteString(hex.EncodeToString(suffix[:]))
	return b.String()
}

func dropDatabase(ctx context.Context, admin, name string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to drop database %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// FORCE ends connections the test left open (PostgreSQL 13+).
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// withDatabase points a DSN, URL or keyword/value form, at database name.
func withDatabase(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("%s is not a valid URL: %w", DatabaseURLEnv, err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		return u.String(), nil
	}
	// Later keywords override earlier ones.
	return dsn + " dbname=" + name, nil
}

// Eventually polls cond until it holds, failing the test after timeout:
// tests wait for an effect instead of sleeping and hoping.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
