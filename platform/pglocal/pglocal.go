// Package pglocal runs a private PostgreSQL cluster from the system's
// server binaries, for `prism dev` and tests.
//
// The server is a child process (not a pg_ctl daemon) so it cannot outlive
// the program by accident: on Linux the kernel sends it SIGTERM when its
// parent dies. It listens only on 127.0.0.1 and on a Unix socket inside
// Dir, with trust authentication, which is acceptable because nothing but
// the local machine can reach it. Never use it for production data.
package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"
)

// superuser is the role initdb creates and the DSNs use.
const superuser = "postgres"

// Time limits used when ctx has no earlier deadline.
const (
	readyTimeout = 60 * time.Second // initdb'd cluster recovering after a crash can be slow
	stopTimeout  = 30 * time.Second
)

// Options configures the cluster.
type Options struct {
	// Dir holds the cluster: Dir/data (PGDATA) and Dir/run (Unix socket).
	// Reusing it keeps the data. Required. When running as root it is
	// handed to the postgres user; if that user cannot reach it, the
	// cluster lives under the user's home and Dir becomes a link to it.
	Dir string
	// Port on 127.0.0.1; 0 picks a free port.
	Port int
	// BinDir holds initdb and postgres; "" discovers it: pg_config
	// --bindir, then the newest /usr/lib/postgresql/*/bin, then PATH.
	BinDir string
	// Database is created if missing and is what DSN points to; "" means
	// "prism".
	Database string
	// Fsync makes initdb and the server flush to disk. prism dev must set
	// it (a crash would otherwise corrupt the cluster); tests leave it off
	// because their data is disposable and fsync dominates their run time.
	Fsync bool
	// Log receives the server's output, one event per line.
	Log zerolog.Logger
}

// Cluster is a running server.
type Cluster struct {
	cmd      *exec.Cmd
	port     int
	database string
	log      *serverLog

	exited  chan struct{} // closed when the process has been reaped
	exitErr error         // valid after exited is closed

	stopOnce sync.Once
	stopErr  error
}

// Start initializes the cluster on first use, starts the server and waits
// until it accepts connections, then creates opts.Database.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("pglocal: Options.Dir (cluster directory) is required")
	}
	if opts.Database == "" {
		opts.Database = "prism"
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: resolve %q: %w", opts.Dir, err)
	}
	bin, err := findBinDir(ctx, opts.BinDir)
	if err != nil {
		return nil, err
	}
	as, err := serverUser()
	if err != nil {
		return nil, err
	}
	// Parents we create must stay searchable for the postgres user.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("pglocal: create %s: %w", filepath.Dir(dir), err)
	}
	if dir, err = as.place(dir); err != nil {
		return nil, err
	}
	dataDir, runDir := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("pglocal: create %s: %w", runDir, err)
	}
	if err := as.chownTree(dir); err != nil {
		return nil, fmt.Errorf("pglocal: hand %s to the postgres user: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initdb(ctx, bin, dir, dataDir, as, opts.Fsync); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("pglocal: inspect %s: %w", dataDir, err)
	}
	if err := clearStaleLock(ctx, dataDir, runDir); err != nil {
		return nil, err
	}

	// A port picked as free can be taken before postgres binds it; retry
	// with another one in that case only.
	var c *Cluster
	for attempt := 0; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		c, err = launch(ctx, bin, dataDir, runDir, port, as, opts)
		if err == nil {
			break
		}
		if opts.Port != 0 || attempt == 2 || c == nil || !c.log.contains("Address already in use") {
			return nil, err
		}
	}
	if err := CreateDatabase(ctx, c.DSNFor("postgres"), opts.Database); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		return nil, errors.Join(err, c.Stop(stopCtx))
	}
	return c, nil
}

// DSN is the connection string for Options.Database.
func (c *Cluster) DSN() string { return c.DSNFor(c.database) }

// DSNFor is the connection string for another database on this cluster,
// as the superuser.
func (c *Cluster) DSNFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on.
func (c *Cluster) Port() int { return c.port }

// Stop shuts the server down: a fast shutdown (SIGINT: roll back open
// transactions, checkpoint, exit) bounded by ctx (30 s if ctx has no
// deadline), then an immediate shutdown and finally SIGKILL. Safe to call
// more than once.
func (c *Cluster) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() { c.stopErr = c.stop(ctx) })
	return c.stopErr
}

func (c *Cluster) stop(ctx context.Context) error {
	select {
	case <-c.exited:
		if c.exitErr != nil {
			return fmt.Errorf("pglocal: postgres had already exited: %w", c.exitErr)
		}
		return nil
	default:
	}
	pid := c.cmd.Process.Pid
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pglocal: signal postgres (pid %d): %w", pid, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, stopTimeout)
	defer cancel()
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
	}
	// The server runs in its own process group: signal the backends too.
	_ = syscall.Kill(-pid, syscall.SIGQUIT)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-c.exited
	}
	return fmt.Errorf("pglocal: fast shutdown did not finish (%w); server killed", ctx.Err())
}

func initdb(ctx context.Context, bin, dir, dataDir string, as *runAs, fsync bool) error {
	// initdb into a scratch directory and rename, so a run interrupted
	// half-way is retried rather than leaving a broken cluster behind.
	tmp := filepath.Join(dir, "data.initdb")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("pglocal: remove %s: %w", tmp, err)
	}
	args := []string{"-D", tmp, "-U", superuser, "-A", "trust", "-E", "UTF8", "--no-locale"}
	if !fsync {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), args...)
	cmd.Dir = dir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: as.credential(), Pdeathsig: syscall.SIGKILL}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pglocal: initdb %s: %w\n%s", dataDir, err, bytes.TrimSpace(out))
	}
	if err := os.Rename(tmp, dataDir); err != nil {
		return fmt.Errorf("pglocal: move new cluster into place: %w", err)
	}
	return nil
}

// launch starts postgres and waits until it accepts connections. On
// failure the returned Cluster (if any) carries the server log.
func launch(ctx context.Context, bin, dataDir, runDir string, port int, as *runAs, opts Options) (*Cluster, error) {
	args := []string{"-D", dataDir, "-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", runDir}
	if !opts.Fsync {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), args...)
	cmd.Dir = runDir
	cmd.Env = serverEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: as.credential(),
		// Dies with us. Note that Linux ties this to the thread that
		// started the child; Go threads outlive goroutines unless locked.
		Pdeathsig: syscall.SIGTERM,
		// Own process group: a terminal's Ctrl-C reaches only prism, which
		// then stops the database after its clients.
		Setpgid: true,
	}
	logs := &serverLog{log: opts.Log}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	// Backends inherit the output pipe; do not let one that lingers after
	// the postmaster exits block Wait forever.
	cmd.WaitDelay = 5 * time.Second
	go logs.consume(pr)
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("pglocal: start %s: %w", cmd.Path, err)
	}
	c := &Cluster{cmd: cmd, port: port, database: opts.Database, log: logs, exited: make(chan struct{})}
	go func() {
		c.exitErr = cmd.Wait()
		pw.Close()
		close(c.exited)
	}()
	if err := c.waitReady(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = c.Stop(stopCtx)
		return c, fmt.Errorf("%w\nserver log:\n%s", err, logs.lastLines())
	}
	return c, nil
}

// waitReady polls with real connections: the port opening is not enough,
// the server refuses queries while it starts up or recovers.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, readyTimeout)
	defer cancel()
	dsn := c.DSNFor("postgres")
	var lastErr error
	for {
		select {
		case <-c.exited:
			return fmt.Errorf("pglocal: postgres exited during start-up: %v", c.exitErr)
		default:
		}
		if lastErr = ping(ctx, dsn); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pglocal: postgres not accepting connections on port %d: %w (last error: %v)", c.port, ctx.Err(), lastErr)
		case <-c.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ping(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return conn.Ping(ctx)
}

// CreateDatabase creates database name on the server at dsn unless it
// exists. dsn must allow CREATE DATABASE (e.g. a superuser).
func CreateDatabase(ctx context.Context, dsn, name string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("pglocal: connect to create database %q: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("pglocal: look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("pglocal: create database %q: %w", name, err)
	}
	return nil
}

// clearStaleLock removes the lock files a crashed server leaves behind. A
// server that is still running on the directory (for instance one still
// shutting down after its parent died) gets a few seconds to exit first.
func clearStaleLock(ctx context.Context, dataDir, runDir string) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return removeSocketLocks(runDir)
	}
	if err != nil {
		return fmt.Errorf("pglocal: read %s: %w", pidFile, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 {
		deadline := time.Now().Add(5 * time.Second)
		for isPostgres(pid) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("pglocal: PostgreSQL (pid %d) is already running on %s; stop it (kill -INT %d) or use another Dir", pid, dataDir, pid)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pglocal: remove stale %s: %w", pidFile, err)
	}
	return removeSocketLocks(runDir)
}

// isPostgres reports whether pid is alive and looks like a postgres
// process; a recycled pid belonging to something else is not.
func isPostgres(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // cannot tell: assume it is
	}
	return bytes.Contains(cmdline, []byte("postgres"))
}

// removeSocketLocks deletes socket lock files in runDir, which only this
// package's servers use.
func removeSocketLocks(runDir string) error {
	locks, _ := filepath.Glob(filepath.Join(runDir, ".s.PGSQL.*"))
	for _, f := range locks {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("pglocal: remove stale %s: %w", f, err)
		}
	}
	return nil
}

// serverEnv is our environment minus PG* variables, which initdb and
// postgres would otherwise pick up (PGDATA, PGPORT, ...).
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pglocal: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
