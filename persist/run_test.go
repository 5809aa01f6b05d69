package persist_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// docsStreams returns JetStream on an embedded server with the DOCS
// topology in place.
func docsStreams(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	_, _, js := testenv.NATS(tb)
	if err := streams.Setup(context.Background(), js, streams.DefaultTopology()); err != nil {
		tb.Fatal(err)
	}
	return js
}

// runProjector runs the persist role on pool until the test ends; Run must
// then return without error within 10 s.
func runProjector(t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream, opts ...persist.RunOption) {
	t.Helper()
	p := persist.New(pool, zerolog.New(zerolog.NewTestWriter(t)))
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx, js, opts...) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// publishAll publishes evs to the stream as the stages would.
func publishAll(tb testing.TB, js jetstream.JetStream, evs []*streams.Event) {
	tb.Helper()
	pub := streams.NewPublisher(js, "/test")
	for _, ev := range evs {
		if err := pub.Publish(context.Background(), ev); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestRunProjectsTheStream(t *testing.T) {
	ctx := context.Background()
	pool := newDB(t)
	js := docsStreams(t)
	runProjector(t, pool, js, persist.WithConcurrency(4))
	evs := pipeline(t)
	publishAll(t, js, evs)
	testenv.Eventually(t, 10*time.Second, "every event projected", func() bool {
		return count(t, pool, "SELECT count(*) FROM document_events") == len(evs)
	})
	testenv.Eventually(t, 5*time.Second, "final statuses", func() bool {
		return count(t, pool, `SELECT count(*) FROM documents WHERE
			(id = 'docA' AND status = 'analyzed') OR (id = 'docB' AND status = 'failed') OR (id = 'docC' AND status = 'analyzed' AND run = 2)`) == 3
	})
	if n := count(t, pool, "SELECT max(last_event_seq) FROM documents"); n != len(evs) {
		t.Fatalf("last_event_seq = %d, want the stream sequence %d", n, len(evs))
	}
	before := snap(t, pool)

	// The same event stored a second time under another Nats-Msg-Id (as a
	// publisher retry after the duplicate window would): delivered, applied
	// as a no-op, acknowledged.
	raw, _ := json.Marshal(evs[len(evs)-1])
	ack, err := js.Publish(ctx, evs[len(evs)-1].NATSSubject(), raw)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, streams.DocsStream, streams.PersistConsumer.Name)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "duplicate acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.AckFloor.Stream >= ack.Sequence && info.NumAckPending == 0
	})
	if after := snap(t, pool); after != before {
		t.Fatalf("redelivered duplicate changed the read model\nbefore: %+v\n after: %+v", before, after)
	}
	assertNoDeadLetters(t, js)
}

func assertNoDeadLetters(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if n := streamstest.DeadLetters(t, js); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// An event is acknowledged only once the transaction that projects it has
// committed: while every COMMIT fails (a deferred trigger refuses it, as a
// lost connection or a full disk would at that moment), nothing is acked
// and nothing is in the read model; once commits succeed again, every
// event is projected from the redeliveries and acknowledged.
func TestEventsAreAckedOnlyAfterTheirCommit(t *testing.T) {
	ctx := context.Background()
	pool := newDB(t)
	js := docsStreams(t)
	allowCommits := refuseCommits(t, pool, "document_events")
	runProjector(t, pool, js, persist.WithBackoff(func(uint64) time.Duration { return 200 * time.Millisecond }))
	evs := pipeline(t)
	publishAll(t, js, evs)
	cons, err := js.Consumer(ctx, streams.DocsStream, streams.PersistConsumer.Name)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "failed commits redelivered", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumRedelivered > 0
	})
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 0 || count(t, pool, "SELECT count(*) FROM document_events") != 0 {
		t.Fatalf("with every commit failing: ack floor %d, %d events in the read model; want 0 and 0",
			info.AckFloor.Stream, count(t, pool, "SELECT count(*) FROM document_events"))
	}

	allowCommits()
	testenv.Eventually(t, 10*time.Second, "every event projected after commits succeed", func() bool {
		return count(t, pool, "SELECT count(*) FROM document_events") == len(evs)
	})
	testenv.Eventually(t, 10*time.Second, "every event acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.AckFloor.Stream == uint64(len(evs)) && info.NumAckPending == 0
	})
	assertNoDeadLetters(t, js)
}
