package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSCluster starts n NATS servers with JetStream clustered together on
// loopback, as production runs three, and returns a client of each,
// once the cluster has elected its JetStream leader. Code whose
// correctness rests on compare-and-set should be tested here too: a
// replicated KV bucket reports conflicts with a different error code than
// a single server. Everything stops when the test ends.
func NATSCluster(t testing.TB, n int) []jetstream.JetStream {
	t.Helper()
	routes := make([]*url.URL, n)
	ports := make([]int, n)
	for i := range n {
		ports[i] = freePort(t)
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	clients := make([]jetstream.JetStream, n)
	for i := range n {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("testenv-%d", i),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Cluster:    server.ClusterOpts{Name: "testenv", Host: "127.0.0.1", Port: ports[i]},
			Routes:     routes,
			NoSigs:     true,
			NoLog:      true,
		})
		if err != nil {
			t.Fatalf("testenv: configure NATS cluster node %d: %v", i, err)
		}
		ns.Start()
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		if !ns.ReadyForConnections(setupTimeout) {
			t.Fatalf("testenv: NATS cluster node %d not ready within %s", i, setupTimeout)
		}
		nc, err := nats.Connect(ns.ClientURL(), nats.Name(t.Name()))
		if err != nil {
			t.Fatalf("testenv: connect to NATS cluster node %d: %v", i, err)
		}
		t.Cleanup(nc.Close)
		if clients[i], err = jetstream.New(nc); err != nil {
			t.Fatalf("testenv: JetStream client of node %d: %v", i, err)
		}
	}
	// JetStream answers once the nodes have found each other and elected
	// a meta leader.
	deadline := time.Now().Add(setupTimeout)
	for _, js := range clients {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := js.AccountInfo(ctx)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("testenv: the NATS cluster has no JetStream leader after %s: %v", setupTimeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return clients
}

// freePort is a loopback port free a moment ago: cluster nodes must know
// each other's route ports before they start.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
