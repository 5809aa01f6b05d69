package streams_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go"
)

func chatEvent(t *testing.T, pub *streams.Publisher, m streams.ChatMeta, typ streams.EventType, key string, data any) *streams.Event {
	t.Helper()
	ev, err := streams.NewChatEvent(pub.Source(), m, typ, key, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// A session's events go to CHAT, come back as chat events through the log
// and a follower, and an answer ends once: the second end is a duplicate.
func TestChatEventsRoundTripAndAnAnswerEndsOnce(t *testing.T) {
	ctx := context.Background()
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	m := streams.ChatMeta{Owner: "alice", Session: "s1", CorrelationID: "c1"}
	created := chatEvent(t, pub, m, streams.ChatCreated, "", streams.ChatCreatedData{Title: "t", DocumentID: "d1", CreatedBy: "alice"})
	if created.NATSSubject() != "prism.chat.alice.s1.created" || !created.IsChat() || created.StreamName() != streams.ChatStream {
		t.Fatalf("created event: subject %s, chat %v, stream %s", created.NATSSubject(), created.IsChat(), created.StreamName())
	}
	chatEvent(t, pub, m, streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "why?"})
	end := chatEvent(t, pub, m, streams.ChatFailed, "a1", streams.ChatAnswerData{AnswerID: "a1", MessageID: "q1", Content: "Because", Incomplete: true, Reason: "stopped"})
	late := chatEvent(t, pub, m, streams.ChatAnswered, "a1", streams.ChatAnswerData{AnswerID: "a1", MessageID: "q1", Content: "Because of clause 4."})
	if end.Duplicate || !late.Duplicate || late.Seq != end.Seq {
		t.Fatalf("second end of an answer: duplicate %v seq %d; first: duplicate %v seq %d", late.Duplicate, late.Seq, end.Duplicate, end.Seq)
	}
	// Regenerating replaces the cut-off answer.
	chatEvent(t, pub, m, streams.ChatAsked, "a2", streams.ChatAskedData{MessageID: "q1", AnswerID: "a2", Content: "why?", Regenerates: "a1"})
	chatEvent(t, pub, m, streams.ChatAnswered, "a2", streams.ChatAnswerData{AnswerID: "a2", MessageID: "q1", Content: "Clause 4 [1].", Citations: []streams.Citation{{Ref: 1, StartLine: 3, EndLine: 4, Quote: "clause 4"}}})

	log := streams.NewChatLog(js)
	var tr streams.Transcript
	if err := log.Replay(ctx, streams.ChatFilter("alice", "s1"), 0, end.Seq+10, func(ev *streams.Event) (bool, error) {
		return false, tr.Apply(ev)
	}); err != nil {
		t.Fatal(err)
	}
	if !tr.Exists || tr.Created.DocumentID != "d1" || len(tr.Messages) != 2 {
		t.Fatalf("transcript: %+v", tr)
	}
	q, a := tr.Messages[0], tr.Messages[1]
	if q.Role != streams.RoleUser || q.Content != "why?" || a.ID != "a2" || a.Status != streams.MessageComplete || len(a.Citations) != 1 || tr.Answering() != nil {
		t.Fatalf("messages: %+v", tr.Messages)
	}
	// Another owner's filter sees nothing of it.
	if ev, err := log.Last(ctx, streams.ChatFilter("bob", "s1")); err != nil || ev != nil {
		t.Fatalf("bob sees %v, %v", ev, err)
	}

	// A follower of the session reads CHAT, not DOCS.
	f, err := streams.Follow(ctx, js, streams.ChatFilter("alice", "s1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first, err := f.Next(ctx, 5*time.Second)
	if err != nil || first.EventKind() != streams.ChatCreated || first.Seq != created.Seq {
		t.Fatalf("first followed event: %+v, %v", first, err)
	}
}

// An incomplete end keeps its text; one with no text is a failure.
func TestTranscriptStatuses(t *testing.T) {
	var tr streams.Transcript
	apply := func(typ streams.EventType, key string, data any) {
		ev, err := streams.NewChatEvent("/test", streams.ChatMeta{Owner: "o", Session: "s"}, typ, key, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	apply(streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "one"})
	if tr.Answering() == nil || tr.Answering().ID != "a1" {
		t.Fatal("a1 should be answering")
	}
	apply(streams.ChatFailed, "a1", streams.ChatAnswerData{AnswerID: "a1", Reason: "busy", ReasonClass: "model-busy"})
	apply(streams.ChatAsked, "a2", streams.ChatAskedData{MessageID: "q2", AnswerID: "a2", Content: "two"})
	apply(streams.ChatFailed, "a2", streams.ChatAnswerData{AnswerID: "a2", Content: "Part", Incomplete: true})
	apply(streams.ChatAnswered, "a2", streams.ChatAnswerData{AnswerID: "a2", Content: "Whole"}) // a second end changes nothing
	got := []string{tr.Messages[1].Status, tr.Messages[3].Status, tr.Messages[3].Content}
	want := []string{streams.MessageFailed, streams.MessageIncomplete, "Part"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
}

// PublishAfter is a compare-and-set over a session's subjects: of two
// questions decided on the same state of the session, one is stored and
// the other is told the log moved on, whichever subject moved it.
func TestPublishAfterRefusesAMovedSession(t *testing.T) {
	ctx := context.Background()
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	m := streams.ChatMeta{Owner: "alice", Session: "s1"}
	filter := streams.ChatFilter(m.Owner, m.Session)
	asked := func(answer string) *streams.Event {
		ev, err := streams.NewChatEvent(pub.Source(), m, streams.ChatAsked, answer, streams.ChatAskedData{MessageID: "q-" + answer, AnswerID: answer, Content: "?"})
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	if err := pub.PublishAfter(ctx, asked("a0"), filter, 0); err != nil {
		t.Fatalf("first event of an empty session: %v", err)
	}
	created := chatEvent(t, pub, m, streams.ChatCreated, "", streams.ChatCreatedData{Title: "t", CreatedBy: "alice"})
	// Another session's events do not move this one.
	chatEvent(t, pub, streams.ChatMeta{Owner: "alice", Session: "s2"}, streams.ChatCreated, "", streams.ChatCreatedData{Title: "t", CreatedBy: "alice"})
	first := asked("a1")
	if err := pub.PublishAfter(ctx, first, filter, created.Seq); err != nil {
		t.Fatalf("after the newest event: %v", err)
	}
	if err := pub.PublishAfter(ctx, asked("a2"), filter, created.Seq); !errors.Is(err, streams.ErrMoved) {
		t.Fatalf("after an event that is no longer the newest: %v, want ErrMoved", err)
	}
	if err := pub.PublishAfter(ctx, asked("a3"), filter, 0); !errors.Is(err, streams.ErrMoved) {
		t.Fatalf("as the first event of a session that has some: %v, want ErrMoved", err)
	}
	if err := pub.PublishAfter(ctx, asked("a4"), filter, first.Seq); err != nil {
		t.Fatalf("after the newest again: %v", err)
	}
}

// A long session replays in batches: one direct get request for up to 256
// events, whatever else the stream holds between them, from any point to
// any bound, with events larger than a batch's bytes, and stopping when
// told.
func TestReplayBatchesItsGets(t *testing.T) {
	ctx := context.Background()
	js := startJS(t)
	pub := streams.NewPublisher(js, "/test")
	alice := streams.ChatMeta{Owner: "alice", Session: "long", CorrelationID: "c1"}
	bob := streams.ChatMeta{Owner: "bob", Session: "other", CorrelationID: "c2"}
	var seqs []uint64
	for i := range 300 {
		ev := chatEvent(t, pub, alice, streams.ChatAsked, fmt.Sprintf("a%d", i), streams.ChatAskedData{MessageID: fmt.Sprintf("q%d", i), AnswerID: fmt.Sprintf("a%d", i), Content: "why?"})
		seqs = append(seqs, ev.Seq)
		chatEvent(t, pub, bob, streams.ChatAsked, fmt.Sprintf("b%d", i), streams.ChatAskedData{MessageID: fmt.Sprintf("q%d", i), AnswerID: fmt.Sprintf("b%d", i), Content: "why?"})
	}
	big := strings.Repeat("x", 900_000) // five of them are more than a batch's 4 MiB
	for i := range 5 {
		ev := chatEvent(t, pub, alice, streams.ChatAsked, fmt.Sprintf("big%d", i), streams.ChatAskedData{MessageID: "qb", AnswerID: fmt.Sprintf("big%d", i), Content: big})
		seqs = append(seqs, ev.Seq)
	}
	var requests atomic.Int64
	sub, err := js.Conn().Subscribe("$JS.API.DIRECT.GET."+streams.ChatStream, func(*nats.Msg) { requests.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	log := streams.NewChatLog(js)
	replay := func(after, upTo uint64, stopAt int) []uint64 {
		t.Helper()
		requests.Store(0)
		var got []uint64
		if err := log.Replay(ctx, streams.ChatFilter("alice", "long"), after, upTo, func(ev *streams.Event) (bool, error) {
			if ev.Owner != "alice" {
				t.Fatalf("replayed %s's event %d", ev.Owner, ev.Seq)
			}
			got = append(got, ev.Seq)
			return len(got) == stopAt, nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := js.Conn().Flush(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, c := range []struct {
		name        string
		after, upTo uint64
		stopAt      int
		want        []uint64
		maxRequests int64
	}{
		{"all of it", 0, ^uint64(0), -1, seqs, 4}, // 256 small, then 44 small and 4 MiB, then the rest
		{"from the middle to a bound", seqs[99], seqs[199], -1, seqs[100:200], 1},
		{"stopped", 0, ^uint64(0), 10, seqs[:10], 1},
		{"after the last", seqs[len(seqs)-1], ^uint64(0), -1, nil, 1},
	} {
		got := replay(c.after, c.upTo, c.stopAt)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: replayed %d events %v..., want %d", c.name, len(got), got[:min(len(got), 5)], len(c.want))
		}
		if n := requests.Load(); n > c.maxRequests {
			t.Errorf("%s: %d direct get requests, want at most %d", c.name, n, c.maxRequests)
		}
	}
}

// PublishAfter holds on a cluster with the CHAT stream replicated, the
// publishers on different nodes: of questions decided on the same state,
// at most one is stored, and the others are told ErrMoved (on a cluster a
// check racing a write in flight on the filter answers with another error
// code, 10164), while an answer is published at once.
func TestPublishAfterRacesOnEachTopology(t *testing.T) {
	testenv.OnEachTopology(t, func(t *testing.T, b *testenv.Bus) {
		ctx := context.Background()
		top := streams.DefaultTopology()
		top.Replicas = b.Replicas
		if err := streams.EnsureStreams(ctx, b.Client(t, 0), top); err != nil {
			t.Fatal(err)
		}
		var pubs []*streams.Publisher
		for i := range 3 {
			pubs = append(pubs, streams.NewPublisher(b.Client(t, i), "/test"))
		}
		m := streams.ChatMeta{Owner: "alice", Session: "s1"}
		filter := streams.ChatFilter(m.Owner, m.Session)
		event := func(typ streams.EventType, id string, data any) *streams.Event {
			ev, err := streams.NewChatEvent("/test", m, typ, id, data)
			if err != nil {
				t.Fatal(err)
			}
			return ev
		}
		var last uint64
		moved := 0
		for round := range 20 {
			questions := []*streams.Event{
				event(streams.ChatAsked, fmt.Sprintf("a%d-0", round), streams.ChatAskedData{MessageID: "q", AnswerID: "a", Content: "?"}),
				event(streams.ChatAsked, fmt.Sprintf("a%d-1", round), streams.ChatAskedData{MessageID: "q", AnswerID: "a", Content: "?"}),
			}
			answer := event(streams.ChatAnswered, fmt.Sprintf("done%d", round), streams.ChatAnswerData{AnswerID: "a", Content: "!"})
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i, q := range questions {
				wg.Go(func() { errs[i] = pubs[i].PublishAfter(ctx, q, filter, last) })
			}
			wg.Go(func() { errs[2] = pubs[2].Publish(ctx, answer) })
			wg.Wait()
			if errs[2] != nil {
				t.Fatalf("round %d: the answer: %v", round, errs[2])
			}
			stored := 0
			for i, q := range questions {
				switch {
				case errs[i] == nil:
					stored++
					last = max(last, q.Seq)
				case errors.Is(errs[i], streams.ErrMoved):
					moved++
				default:
					t.Errorf("round %d: %v, want stored or ErrMoved", round, errs[i])
				}
			}
			if stored > 1 {
				t.Errorf("round %d: %d questions decided on one state were stored", round, stored)
			}
			last = max(last, answer.Seq)
		}
		t.Logf("%d of 40 questions refused as moved", moved)
	})
}
