package router_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
)

// state is one limiter bucket on a NATS topology (testenv.Topology): what
// the replicas of one test share.
type state struct {
	bus    *testenv.Bus
	bucket string
}

// open opens the bucket as analyzer replica i does: on a connection of its
// own, to node i of a cluster, replicated on every node.
func (s state) open(t *testing.T, i int, clock router.Clock) *router.Shared {
	t.Helper()
	sh, err := createShared(context.Background(), s.bus.Client(t, i), s.bucket, s.bus.Replicas, clock)
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

// replicas opens n views of the bucket, each as a separate analyzer
// process (on a cluster, each on another node), all on clock.
func (s state) replicas(t *testing.T, n int, clock router.Clock) []*router.Shared {
	t.Helper()
	var out []*router.Shared
	for i := range n {
		out = append(out, s.open(t, i, clock))
	}
	return out
}

// factor is how much faster than real time a quota scenario on s runs.
// The 61 s window lets a call reach the model up to one second after the
// second it was reserved in; at 20x that second is 50 ms of real time, and
// a cluster's writes (a round among three nodes, all in this process) take
// longer on a busy machine: the scenario would measure the machine, not the
// router. At 10x it is 100 ms.
func (s state) factor() float64 {
	if s.bus.Replicas > 1 {
		return 10
	}
	return 20
}

// oneNode is a bucket on a NATS server of the test's own.
func oneNode(t *testing.T, bucket string) state {
	t.Helper()
	return state{testenv.Topologies()[0].Start(t), bucket}
}

// topologyCase is a test that holds on every topology.
type topologyCase struct {
	name string
	run  func(t *testing.T, s state)
}

// onEachTopology starts each topology once (a cluster takes seconds to
// elect its leaders) and runs every case on it as a subtest, each with a
// bucket of its own.
func onEachTopology(t *testing.T, cases []topologyCase) {
	testenv.OnEachTopology(t, func(t *testing.T, b *testenv.Bus) {
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) { c.run(t, state{b, fmt.Sprintf("case-%d", i)}) })
		}
	})
}
