package topology

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Node is one nats-server process of the cluster. Its ports and data
// directory stay the same across restarts, as a StatefulSet's pod's do.
type Node struct {
	Name                                 string
	ClientPort, ClusterPort, MonitorPort int
	Dir                                  string // JetStream data and nats.conf
	bin                                  string
	env                                  map[string]string // the users' passwords auth.conf reads
	proc                                 *system.Process
}

// ClientURL is where clients reach the node.
func (n *Node) ClientURL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.ClientPort) }

// nodeConfig is a node's server configuration, the one place it is
// written: users, permissions and TLS are added here (extra).
func nodeConfig(n *Node, routes []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %q\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\n", n.Name, n.ClientPort, n.MonitorPort)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", filepath.Join(n.Dir, "js"))
	fmt.Fprintf(&b, "cluster {\n  name: \"prism\"\n  listen: \"127.0.0.1:%d\"\n  routes: [\n", n.ClusterPort)
	for _, r := range routes {
		fmt.Fprintf(&b, "    %q\n", r)
	}
	b.WriteString("  ]\n}\n")
	b.WriteString(extra)
	return b.String()
}

// startCluster writes each node's configuration, with authConf beside it
// as a deployment mounts it, and starts the nodes, returning once the
// cluster has a JetStream leader. A port found free can be taken by
// another process (the tests of other packages run at the same time)
// before a node binds it: the cluster then starts again on other ports,
// up to three times.
func (tp *Topology) startCluster(bin string, authConf []byte, o Options) {
	tp.t.Helper()
	for attempt := 1; ; attempt++ {
		err := tp.tryCluster(bin, authConf, o, attempt)
		if err == nil {
			break
		}
		for _, n := range tp.Nodes {
			if n.proc != nil {
				n.proc.Kill()
			}
		}
		tp.Nodes = nil
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			tp.t.Fatalf("topology: %v", err)
		}
		tp.t.Logf("topology: starting the cluster again on other ports: %v", err)
	}
	for _, n := range tp.Nodes {
		tp.t.Cleanup(func() {
			if done, _ := n.proc.Exited(); !done {
				_, _ = n.proc.Stop(10 * time.Second)
			}
			if tp.t.Failed() {
				tp.t.Logf("NATS node %s:\n%s", n.Name, tail(n.proc.Output(), 3000))
			}
		})
	}
	tp.waitMetaLeader(60 * time.Second)
}

// tryCluster picks ports, writes the nodes' configurations and starts them.
func (tp *Topology) tryCluster(bin string, authConf []byte, o Options, attempt int) error {
	for i := range o.Nodes {
		tp.Nodes = append(tp.Nodes, &Node{
			Name: fmt.Sprintf("n%d", i), ClientPort: freePort(tp.t), ClusterPort: freePort(tp.t), MonitorPort: freePort(tp.t),
			Dir: tempDir(tp.t, fmt.Sprintf("nats-n%d-%d", i, attempt)), bin: bin, env: tp.Auth.ServerEnv(),
		})
	}
	var routes []string
	for _, n := range tp.Nodes {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(n.ClusterPort))
	}
	for _, n := range tp.Nodes {
		if err := os.WriteFile(filepath.Join(n.Dir, "auth.conf"), authConf, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(n.Dir, "nats.conf"), []byte(nodeConfig(n, routes, "include \"auth.conf\"\n"+o.NodeConfig)), 0o600); err != nil {
			return err
		}
		if err := n.start(); err != nil {
			return err
		}
	}
	return nil
}

// Start runs the node on its configuration and data, and waits until it
// takes clients.
func (n *Node) Start(t interface {
	Helper()
	Fatalf(string, ...any)
}) {
	t.Helper()
	if err := n.start(); err != nil {
		t.Fatalf("topology: %v", err)
	}
}

func (n *Node) start() error {
	p, err := system.StartBinary("nats-"+n.Name, n.bin, []string{"-c", filepath.Join(n.Dir, "nats.conf")}, n.env)
	if err != nil {
		return err
	}
	n.proc = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(n.monitor("/healthz")); err == nil {
			resp.Body.Close()
			return nil
		}
		if done, err := p.Exited(); done || time.Now().After(deadline) {
			return fmt.Errorf("NATS node %s did not start: %v\n%s", n.Name, err, p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill ends the node with SIGKILL, as a crashed machine would.
func (n *Node) Kill() { n.proc.Kill() }

func (n *Node) monitor(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(n.MonitorPort) + path
}

// waitMetaLeader waits until JetStream answers through every node.
func (tp *Topology) waitMetaLeader(within time.Duration) {
	tp.t.Helper()
	deadline := time.Now().Add(within)
	for _, n := range tp.Nodes {
		// The monitor port answers before the client port takes clients.
		nc, err := nats.Connect(n.ClientURL(), nats.UserInfo(system.AdminUser, tp.Auth[system.AdminUser]),
			nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
		if err != nil {
			tp.t.Fatalf("topology: connect to %s: %v", n.Name, err)
		}
		js, _ := jetstream.New(nc)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := js.AccountInfo(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				nc.Close()
				tp.t.Fatalf("topology: no JetStream leader after %s: %v", within, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		nc.Close()
	}
}

// CurrentReplicas is how many of stream's replicas are current with
// its leader, leader included, by the stream's info.
func CurrentReplicas(ctx context.Context, js jetstream.JetStream, stream string) (int, error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream, err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return 0, nil
	}
	n := 1
	for _, r := range info.Cluster.Replicas {
		if r.Current && !r.Offline {
			n++
		}
	}
	return n, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
