package pglocal

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// clusterDir returns a directory the postgres user can reach when the
// tests run as root; t.TempDir's parent is private (0700).
func clusterDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pglocal-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func requireBinaries(t *testing.T) {
	t.Helper()
	if _, err := findBinDir(t.Context(), ""); err != nil {
		t.Fatalf("no PostgreSQL server binaries (scripts/ensure-postgres.sh installs them): %v", err)
	}
}

func start(t *testing.T, opts Options) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}

func query(t *testing.T, dsn, sql string, args ...any) pgx.Rows {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	rows, err := conn.Query(t.Context(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return rows
}

func TestRestartKeepsDataAndRecoversFromCrash(t *testing.T) {
	requireBinaries(t)
	dir := clusterDir(t)
	opts := Options{Dir: dir, Database: "prism_test"}

	c := start(t, opts)
	if !strings.Contains(c.DSN(), "/prism_test?") {
		t.Errorf("DSN %q does not name the database", c.DSN())
	}
	for _, sql := range []string{"CREATE TABLE docs (id int)", "INSERT INTO docs VALUES (42)"} {
		rows := query(t, c.DSN(), sql)
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	// Simulate a crash: kill the whole server, leaving postmaster.pid.
	c = start(t, opts)
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err != nil {
		t.Fatalf("expected a stale postmaster.pid after the crash: %v", err)
	}

	c = start(t, opts)
	ids, err := pgx.CollectRows(query(t, c.DSN(), "SELECT id FROM docs"), pgx.RowTo[int])
	if err != nil || len(ids) != 1 || ids[0] != 42 {
		t.Fatalf("after crash and restart: ids %v, err %v", ids, err)
	}
}

func TestStartErrors(t *testing.T) {
	_, err := Start(t.Context(), Options{Dir: clusterDir(t), BinDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql") || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Errorf("start with empty BinDir: err = %v, want install hint", err)
	}
	if _, err := Start(t.Context(), Options{}); err == nil {
		t.Error("start without Dir succeeded")
	}
}

func TestRootNeedsReachableDir(t *testing.T) {
	as := rootOnly(t)
	private := t.TempDir() // parent is 0700 root
	if err := as.checkReachable(filepath.Join(private, "pg")); err == nil || !strings.Contains(err.Error(), "cannot enter") {
		t.Errorf("checkReachable(private) = %v, want cannot-enter error", err)
	}
	if err := as.checkReachable(clusterDir(t)); err != nil {
		t.Errorf("checkReachable(world-searchable) = %v", err)
	}
}

// TestRootFromPrivateDirectory is `prism dev` run as root in a checkout
// the postgres user cannot enter (under /root, mode 0700): the cluster is
// placed under that user's home, Dir links to it, and a second start finds
// the same data.
func TestRootFromPrivateDirectory(t *testing.T) {
	as := rootOnly(t)
	requireBinaries(t)
	dir := filepath.Join(t.TempDir(), "var", "pg") // t.TempDir's parent is 0700 root
	c := start(t, Options{Dir: dir})
	target, err := os.Readlink(dir)
	if err != nil {
		t.Fatalf("%s is not a link to the placed cluster: %v", dir, err)
	}
	t.Cleanup(func() { os.RemoveAll(target) })
	if !strings.HasPrefix(target, as.home+string(filepath.Separator)) {
		t.Errorf("cluster placed at %s, want under %s", target, as.home)
	}
	exec1(t, c.DSN(), "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	again := start(t, Options{Dir: dir})
	var v int
	rows := query(t, again.DSN(), "SELECT v FROM kept")
	for rows.Next() {
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	if v != 42 {
		t.Errorf("second start: kept = %d, want the first start's 42", v)
	}
	if t2, _ := os.Readlink(dir); t2 != target {
		t.Errorf("second start placed the cluster at %s, want %s", t2, target)
	}
}

// rootOnly returns the server account; these cases exist only as root,
// which is how CI runs.
func rootOnly(t *testing.T) *runAs {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("only relevant as root (CI runs as root)")
	}
	as, err := serverUser()
	if err != nil {
		t.Fatalf("running as root without a postgres user: %v", err)
	}
	return as
}

func exec1(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestFindBinDir(t *testing.T) {
	requireBinaries(t)
	dir, err := findBinDir(t.Context(), "")
	if err != nil || !hasServerBinaries(dir) {
		t.Fatalf("findBinDir = %q, %v", dir, err)
	}
}

// TestServerDiesWithParent runs a cluster in a child test process, kills
// that process with SIGKILL (no cleanup runs) and expects the kernel to
// take the server down with it.
func TestServerDiesWithParent(t *testing.T) {
	if dir := os.Getenv("PGLOCAL_HELPER_DIR"); dir != "" {
		c, err := Start(context.Background(), Options{Dir: dir})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("pid", c.cmd.Process.Pid)
		select {}
	}
	requireBinaries(t)
	helper := exec.Command(os.Args[0], "-test.run=^TestServerDiesWithParent$")
	helper.Env = append(os.Environ(), "PGLOCAL_HELPER_DIR="+clusterDir(t))
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	var pid int
	if _, serr := fmt.Sscanf(line, "pid %d", &pid); serr != nil {
		t.Fatalf("helper said %q (%v)", line, err)
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for isPostgres(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postgres (pid %d) outlived its parent", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLogLevel(t *testing.T) {
	for line, want := range map[string]zerolog.Level{
		"2025-01-01 00:00:00.000 UTC [7] LOG:  database system is ready to accept connections":        zerolog.InfoLevel,
		"2025-01-01 00:00:00.000 UTC [7] WARNING:  could not flush dirty data":                        zerolog.WarnLevel,
		"2025-01-01 00:00:00.000 UTC [7] FATAL:  lock file \"postmaster.pid\" already exists":         zerolog.ErrorLevel,
		"2025-01-01 00:00:00.000 UTC [9] FATAL:  terminating connection due to administrator command": zerolog.InfoLevel,
	} {
		if got := level(line); got != want {
			t.Errorf("level(%q) = %v, want %v", line, got, want)
		}
	}
}
