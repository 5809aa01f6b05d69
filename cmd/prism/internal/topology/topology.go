// Package topology starts AI-Prism as a deployment runs it, as processes
// on loopback: a NATS JetStream cluster of separate nats-server processes,
// PostgreSQL, an S3 server process, the Bedrock simulator, and every role
// as its own `prism <role>` process, scaled. Tests kill and restart any
// of them. The nodes load deploy/nats/auth.conf, the permissions shipped
// for compose and Kubernetes, with passwords made up for the run;
// `prism setup` creates the streams, consumers and buckets as admin, and
// every role signs in as its own user (RoleEnv), as in a deployment.
package topology

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/platform/testenv/workspace"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Options shape a topology; zero values take the defaults.
type Options struct {
	Nodes int            // NATS nodes, 3 by default
	Scale map[string]int // processes per role; default 2 analyzers, 2 extractors, 2 APIs, 1 of the rest
	// Env is added to every role's environment (SHUTDOWN_GRACE, ...).
	Env map[string]string
	// NodeConfig is appended to every node's server configuration.
	NodeConfig string
	// SimSpeed scales the Bedrock simulator's latencies (1 is realistic);
	// 0 means 0.05, documents analyzed in a fraction of a second.
	SimSpeed float64
}

// Topology is a running system of processes. Everything stops when the
// test ends.
type Topology struct {
	t     testing.TB
	bin   string
	Nodes []*Node
	DSN   string
	env   map[string]string // shared by every role: where everything is
	Auth  system.BusAuth    // the password of every user of auth.conf

	mu    sync.Mutex
	roles []*Role
}

// Role is one role process; Restart replaces its Process.
type Role struct {
	Name  string
	Index int // among the processes of its role
	env   map[string]string
	proc  *system.Process
}

// Process is the role's current process.
func (r *Role) Process() *system.Process { return r.proc }

// URL is the api process's base URL.
func (r *Role) URL() string { return "http://" + r.proc.APIAddr }

// Start starts the whole topology and returns once every role process
// has bound its consumers and every api answers /readyz.
func Start(t testing.TB, o Options) *Topology {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	scale := map[string]int{system.RoleAnalyzer: 2, system.RoleExtractor: 2, system.RoleAPI: 2}
	for _, name := range system.RoleNames() {
		if scale[name] == 0 {
			scale[name] = 1
		}
	}
	for k, v := range o.Scale {
		scale[k] = v
	}
	begun := time.Now()
	tp := &Topology{t: t, bin: testenv.PrismBinary(t), Auth: system.NewBusAuth()}
	natsBin := testenv.NATSServerBinary(t)
	root, err := workspace.Root()
	if err != nil {
		t.Fatal(err)
	}
	authConf, err := os.ReadFile(system.AuthConfPath(root))
	if err != nil {
		t.Fatal(err)
	}
	tp.startCluster(natsBin, authConf, o)

	s3 := testenv.S3ProcessConfig(t)
	tp.DSN = testenv.Postgres(t)
	simURL := tp.startSimulator(cmp.Or(o.SimSpeed, 0.05))
	urls := make([]string, len(tp.Nodes))
	for i, n := range tp.Nodes {
		urls[i] = n.ClientURL()
	}
	tp.env = map[string]string{
		"NATS_URL":      strings.Join(urls, ","),
		"NATS_REPLICAS": strconv.Itoa(min(o.Nodes, 3)),
		"DATABASE_URL":  tp.DSN,
		"S3_ENDPOINT":   s3.Endpoint, "S3_BUCKET": s3.Bucket, "S3_REGION": s3.Region,
		"S3_ACCESS_KEY_ID": s3.AccessKeyID, "S3_SECRET_ACCESS_KEY": s3.SecretAccessKey, "S3_USE_PATH_STYLE": "true",
		"BEDROCK_ENDPOINT_URL": simURL, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": simAccessKey, "AWS_SECRET_ACCESS_KEY": simSecretKey,
		"API_AUTH": "dev", "API_SHUTDOWN_DELAY": "300ms", "API_SSE_HEARTBEAT": "1s",
		"LOG_LEVEL": "info", "LOG_FORMAT": "json",
	}
	for k, v := range o.Env {
		tp.env[k] = v
	}
	tp.run("migrate", nil)
	tp.run("setup", tp.Auth.ClientEnv(system.AdminUser))
	// Every role process at once: they only bind to what setup made, so
	// nothing is created concurrently on the cluster.
	var started []*Role
	for i := 0; ; i++ {
		more := false
		for _, name := range system.RoleNames() {
			if i < scale[name] {
				started = append(started, tp.startRole(name, i))
				more = true
			}
		}
		if !more {
			break
		}
	}
	for _, r := range started {
		tp.waitRole(r, 90*time.Second)
	}
	t.Logf("topology: %d NATS nodes and %d role processes up in %s", len(tp.Nodes), len(started), time.Since(begun).Round(time.Millisecond))
	return tp
}

// RoleEnv is the environment of the i-th process of role: the one place
// where a role's connection settings and NATS user are made.
func (tp *Topology) RoleEnv(role string, i int) map[string]string {
	env := map[string]string{}
	for k, v := range tp.env {
		env[k] = v
	}
	for k, v := range tp.Auth.ClientEnv(role) {
		env[k] = v
	}
	if role == system.RoleAPI {
		env["API_ADDR"] = "127.0.0.1:" + strconv.Itoa(freePort(tp.t))
	}
	return env
}

// run runs `prism <command>` to its end with the shared environment plus
// env, as an operator does before starting the roles: migrate (the
// database), then setup (streams, consumers, buckets at NATS_REPLICAS, as
// admin).
func (tp *Topology) run(command string, env map[string]string) {
	tp.t.Helper()
	all := map[string]string{}
	for k, v := range tp.env {
		all[k] = v
	}
	for k, v := range env {
		all[k] = v
	}
	p, err := system.StartBinary(command, tp.bin, []string{command}, all)
	if err != nil {
		tp.t.Fatal(err)
	}
	if err := waitExit(p, 90*time.Second); err != nil {
		tp.t.Fatalf("topology: prism %s: %v\n%s", command, err, p.Output())
	}
}

func (tp *Topology) startRole(name string, i int) *Role {
	tp.t.Helper()
	r := &Role{Name: name, Index: i, env: tp.RoleEnv(name, i)}
	tp.launch(r)
	tp.mu.Lock()
	tp.roles = append(tp.roles, r)
	tp.mu.Unlock()
	tp.t.Cleanup(func() {
		if done, _ := r.proc.Exited(); !done {
			if _, err := r.proc.Stop(30 * time.Second); err != nil {
				tp.t.Logf("topology: stop %s %d: %v", r.Name, r.Index, err)
			}
		}
		if tp.t.Failed() {
			tp.t.Logf("%s %d:\n%s", r.Name, r.Index, tail(r.proc.Output(), 3000))
		}
	})
	return r
}

func (tp *Topology) launch(r *Role) {
	tp.t.Helper()
	p, err := system.StartProcess(tp.bin, r.Name, r.env)
	if err != nil {
		tp.t.Fatal(err)
	}
	r.proc = p
}

// Roles returns the role processes named (all when none is).
func (tp *Topology) Roles(names ...string) []*Role {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var out []*Role
	for _, r := range tp.roles {
		if len(names) == 0 || contains(names, r.Name) {
			out = append(out, r)
		}
	}
	return out
}

// Restart stops r with SIGTERM, waits for it to exit (it must within
// timeout), and starts it again with the same environment (an api on the
// same address), returning once it runs again.
func (tp *Topology) Restart(r *Role, timeout time.Duration) time.Duration {
	tp.t.Helper()
	start := time.Now()
	if _, err := r.proc.Stop(timeout); err != nil {
		tp.t.Fatalf("topology: restart %s %d: %v", r.Name, r.Index, err)
	}
	stopped := time.Since(start)
	tp.launch(r)
	tp.waitRole(r, 60*time.Second)
	return stopped
}

// waitRole waits until r's api answers /readyz, or its consumers are bound.
func (tp *Topology) waitRole(r *Role, within time.Duration) {
	tp.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if r.Name == system.RoleAPI {
		if err := r.proc.WaitReady(ctx, httpStatus); err != nil {
			tp.t.Fatalf("topology: %v", err)
		}
		return
	}
	for !strings.Contains(r.proc.Output(), "consumer started") {
		if done, err := r.proc.Exited(); done {
			tp.t.Fatalf("topology: %s %d exited: %v\n%s", r.Name, r.Index, err, r.proc.Output())
		}
		if ctx.Err() != nil {
			tp.t.Fatalf("topology: %s %d never bound its consumer:\n%s", r.Name, r.Index, r.proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// JetStream is an admin client of the cluster (any node), closed when the
// test ends.
func (tp *Topology) JetStream() jetstream.JetStream {
	tp.t.Helper()
	nc, err := tp.Connect(system.AdminUser)
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tp.t.Fatal(err)
	}
	return js
}

// Connect signs in to the cluster as user of auth.conf.
func (tp *Topology) Connect(user string, opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.UserInfo(user, tp.Auth[user]), nats.MaxReconnects(-1)}, opts...)
	return nats.Connect(tp.env["NATS_URL"], opts...)
}

// The simulator's credentials, made up for tests: it checks SigV4
// signatures with them, as Bedrock does.
const (
	simAccessKey = "topology"
	simSecretKey = "topology-test-secret"
)

// startSimulator runs `prism bedrock-sim` and returns its URL.
func (tp *Topology) startSimulator(speed float64) string {
	tp.t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(tp.t))
	p, err := system.StartBinary("bedrock-sim", tp.bin, []string{"bedrock-sim"}, map[string]string{
		"BEDROCKSIM_ADDR": addr, "BEDROCKSIM_SPEED": strconv.FormatFloat(speed, 'g', -1, 64),
		"BEDROCKSIM_ACCESS_KEY_ID": simAccessKey, "BEDROCKSIM_SECRET_ACCESS_KEY": simSecretKey,
		"LOG_FORMAT": "json",
	})
	if err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() { _, _ = p.Stop(10 * time.Second) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		if done, err := p.Exited(); done || time.Now().After(deadline) {
			tp.t.Fatalf("topology: the Bedrock simulator did not listen: %v\n%s", err, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitExit(p *system.Process, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if done, err := p.Exited(); done {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	return fmt.Errorf("%s still running after %s", p.Role, within)
}

func httpStatus(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("topology: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tempDir is a directory for a node's data and configuration.
func tempDir(t testing.TB, name string) string {
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
