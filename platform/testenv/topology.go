package testenv

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Topology is how the NATS that replicas share their state through is laid
// out: one server, or a cluster whose buckets are replicated on every node,
// as production runs it (NATS_REPLICAS=3). Code that rests on
// compare-and-set should pass on both: a replicated bucket reports a lost
// race as ErrKeyRevisionMismatch (10164) rather than ErrKeyExists, and a
// read may be answered by a follower.
type Topology struct {
	Name  string
	Nodes int
}

// Topologies are the two every replicated-state test runs on.
func Topologies() []Topology {
	return []Topology{{Name: "one-node", Nodes: 1}, {Name: "cluster-of-3", Nodes: 3}}
}

// Bus is a started Topology.
type Bus struct {
	// Replicas is what buckets on it are created with: one per node.
	Replicas int
	urls     []string
}

// Start starts the topology's servers; they stop when the test ends.
func (top Topology) Start(t testing.TB) *Bus {
	t.Helper()
	if top.Nodes <= 1 {
		srv, _, _ := NATS(t)
		return &Bus{Replicas: 1, urls: []string{srv.ClientURL()}}
	}
	b := &Bus{Replicas: top.Nodes}
	for _, js := range NATSCluster(t, top.Nodes) {
		b.urls = append(b.urls, js.Conn().ConnectedUrl())
	}
	return b
}

// Client is replica i's JetStream client on a connection of its own, as
// a separate process has, to node i (round robin) of a cluster. The
// connection closes when the test ends.
func (b *Bus) Client(t testing.TB, i int) jetstream.JetStream {
	t.Helper()
	url := b.urls[i%len(b.urls)]
	nc, err := nats.Connect(url, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testenv: JetStream client: %v", err)
	}
	return js
}

// OnEachTopology starts each topology once and runs test on it as a
// subtest.
func OnEachTopology(t *testing.T, test func(t *testing.T, b *Bus)) {
	for _, top := range Topologies() {
		t.Run(top.Name, func(t *testing.T) { test(t, top.Start(t)) })
	}
}
