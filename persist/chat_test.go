package persist_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// chatScript publishes chat events to CHAT as the API and the analyzer
// would, with increasing times (nanosecond digits included: the database
// keeps microseconds).
type chatScript struct {
	t   *testing.T
	js  jetstream.JetStream
	pub *streams.Publisher
	at  time.Time
}

func newChatScript(t *testing.T, js jetstream.JetStream) *chatScript {
	return &chatScript{t: t, js: js, pub: streams.NewPublisher(js, "/test"), at: time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)}
}

func (c *chatScript) event(owner, session string, typ streams.EventType, key string, data any) *streams.Event {
	c.t.Helper()
	ev, err := streams.NewChatEvent("/test", streams.ChatMeta{Owner: owner, Session: session, CorrelationID: "corr-" + session}, typ, key, data)
	if err != nil {
		c.t.Fatal(err)
	}
	c.at = c.at.Add(1500*time.Millisecond + 123457*time.Nanosecond)
	ev.Time = c.at
	return ev
}

// emit publishes with the event id as Nats-Msg-Id: a second event with
// the same id within the window is not stored.
func (c *chatScript) emit(owner, session string, typ streams.EventType, key string, data any) *streams.Event {
	c.t.Helper()
	ev := c.event(owner, session, typ, key, data)
	if err := c.pub.Publish(context.Background(), ev); err != nil {
		c.t.Fatal(err)
	}
	return ev
}

// emitLate publishes without Nats-Msg-Id, as a retry after the duplicate
// window would be stored: the stream keeps it beside the first.
func (c *chatScript) emitLate(owner, session string, typ streams.EventType, key string, data any) {
	c.t.Helper()
	raw, err := json.Marshal(c.event(owner, session, typ, key, data))
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.js.Publish(context.Background(), streams.ChatSubject(owner, session, typ), raw); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chatScript) ask(owner, session, q, a, content, regenerates string) {
	c.t.Helper()
	c.emit(owner, session, streams.ChatAsked, a, streams.ChatAskedData{MessageID: q, AnswerID: a, Content: content, Regenerates: regenerates})
}

func answer(q, a, content string) streams.ChatAnswerData {
	return streams.ChatAnswerData{AnswerID: a, MessageID: q, Content: content, Model: "anthropic.claude-sonnet-4",
		InputTokens: 1830, OutputTokens: 212, CostUSD: 0.0086712345, LatencyMS: 2410, FirstTokenMS: 388,
		Citations: []streams.Citation{{Ref: 1, Page: 3, StartLine: 41, EndLine: 44, Quote: "Supplier's liability under clause 7.2 is unlimited."}},
		Attempts:  []streams.Attempt{{Model: "anthropic.claude-sonnet-4", Outcome: "ok", LatencyMS: 2400}}}
}

// chatHistory publishes three sessions, interleaved: alice's s1, bound to
// a document, with a complete answer (and its end published twice within
// the window), an incomplete answer regenerated into a complete one, an
// incomplete answer whose second end is stored after the window, a failed
// answer and one still being written; alice's s2, deleted, with an event
// after its deletion; bob's s3. It returns every stored event, in stream
// order, as the stream gives them back.
func chatHistory(t *testing.T, js jetstream.JetStream) []*streams.Event {
	c := newChatScript(t, js)
	c.emit("alice", "s1", streams.ChatCreated, "", streams.ChatCreatedData{Title: "MSA risks", DocumentID: "docA", CreatedBy: "alice"})
	c.ask("alice", "s1", "q1", "a1", "Why is this contract rated critical?", "")
	c.emit("alice", "s2", streams.ChatCreated, "", streams.ChatCreatedData{Title: "General", CreatedBy: "alice"})
	c.emit("alice", "s1", streams.ChatAnswered, "a1", answer("q1", "a1", "Clause 7.2 leaves liability unlimited [1]."))
	if dup := c.emit("alice", "s1", streams.ChatFailed, "a1", streams.ChatAnswerData{AnswerID: "a1", Reason: "watchdog"}); !dup.Duplicate {
		t.Fatal("the second end of a1 within the window was stored")
	}
	c.ask("alice", "s2", "q1", "a1", "What is a DPA?", "")
	c.ask("alice", "s1", "q2", "a2", "What should we negotiate first?", "")
	c.emit("bob", "s3", streams.ChatCreated, "", streams.ChatCreatedData{Title: "Lease", CreatedBy: "bob"})
	cut := answer("q2", "a2", "Start with the")
	cut.Incomplete, cut.Reason, cut.ReasonClass = true, "the model stopped answering", "model-error"
	c.emit("alice", "s1", streams.ChatFailed, "a2", cut)
	c.emit("alice", "s2", streams.ChatAnswered, "a1", answer("q1", "a1", "A data processing agreement."))
	c.ask("alice", "s1", "q2", "a3", "What should we negotiate first?", "a2")
	c.ask("bob", "s3", "q1", "a1", "Can the landlord end it early?", "")
	c.emit("alice", "s1", streams.ChatAnswered, "a3", answer("q2", "a3", "Start with the liability cap in clause 7.2 [1]."))
	c.emit("alice", "s2", streams.ChatDeleted, "", streams.ChatDeletedData{DeletedBy: "alice"})
	c.ask("alice", "s1", "q3", "a4", "And the termination clause?", "")
	c.emit("bob", "s3", streams.ChatAnswered, "a1", answer("q1", "a1", "Only after 24 months [1]."))
	cut = answer("q3", "a4", "Termination for convenience")
	cut.Incomplete, cut.Reason, cut.ReasonClass = true, "the answer was cut off", "model-error"
	c.emit("alice", "s1", streams.ChatFailed, "a4", cut)
	c.emitLate("alice", "s1", streams.ChatAnswered, "a4", answer("q3", "a4", "Termination for convenience needs 90 days' notice."))
	c.ask("alice", "s2", "q2", "a2", "Still there?", "") // after the deletion
	c.ask("alice", "s1", "q4", "a5", "Is the governing law a problem?", "")
	c.emit("alice", "s1", streams.ChatFailed, "a5", streams.ChatAnswerData{AnswerID: "a5", MessageID: "q4", Reason: "every model is throttled", ReasonClass: "model-busy"})
	c.ask("alice", "s1", "q5", "a6", "Summarize.", "")
	return storedChat(t, js)
}

// storedChat reads every event of CHAT back, with its stream sequence.
func storedChat(t *testing.T, js jetstream.JetStream) []*streams.Event {
	t.Helper()
	var evs []*streams.Event
	err := streams.NewChatLog(js).Replay(context.Background(), streams.ChatRoot+".>", 0, 1<<20, func(ev *streams.Event) (bool, error) {
		evs = append(evs, ev)
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// transcript folds the events of one session, as the API and the analyzer do.
func transcript(t *testing.T, evs []*streams.Event, owner, session string) streams.Transcript {
	t.Helper()
	var tr streams.Transcript
	for _, ev := range evs {
		if ev.Owner == owner && ev.Subject == session {
			if err := tr.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tr
}

// assertProjected checks, field by field, that the store shows session as
// the fold of evs does.
func assertProjected(t *testing.T, pool *pgxpool.Pool, evs []*streams.Event, owner, session string) {
	t.Helper()
	want := transcript(t, evs, owner, session)
	got, msgs, seq, err := store.New(pool).ChatSession(context.Background(), owner, session)
	if want.Deleted {
		if !errors.Is(err, store.ErrDeleted) {
			t.Fatalf("%s/%s is deleted; the store answers %v", owner, session, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s/%s: %v", owner, session, err)
	}
	if seq != want.Seq || got.Owner != owner || got.ID != session || got.Title != want.Created.Title ||
		got.DocumentID != want.Created.DocumentID || got.CreatedBy != want.Created.CreatedBy ||
		!got.CreatedAt.Equal(want.CreatedAt.Truncate(time.Microsecond)) || got.MessageCount != len(want.Messages) {
		t.Fatalf("%s/%s: session %+v at seq %d; the fold has %+v at seq %d", owner, session, got, seq, want.Created, want.Seq)
	}
	assertMessages(t, msgs, want.Messages)
}

func assertMessages(t *testing.T, got, want []streams.ChatMessage) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, the fold has %d\n got: %+v\nwant: %+v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		// The database keeps microseconds; events folded on top keep more.
		if !g.CreatedAt.Truncate(time.Microsecond).Equal(w.CreatedAt.Truncate(time.Microsecond)) {
			t.Errorf("message %d (%s): created_at %s, the fold has %s", i, w.ID, g.CreatedAt, w.CreatedAt)
		}
		g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("message %d:\n got: %+v\nwant: %+v", i, g, w)
		}
	}
}

// chatSnap is the chat read model as comparable text.
func chatSnap(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `SELECT jsonb_build_array(
		(SELECT jsonb_agg(to_jsonb(s) ORDER BY s.id) FROM chat_sessions s),
		(SELECT jsonb_agg(to_jsonb(m) ORDER BY m.session_id, m.position) FROM chat_messages m),
		(SELECT jsonb_agg(to_jsonb(e) ORDER BY e.stream_seq) FROM chat_events e))::text`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// waitChatProjected waits until the persist-chat consumer has acknowledged
// every event up to seq.
func waitChatProjected(t *testing.T, js jetstream.JetStream, seq uint64) {
	t.Helper()
	ctx := context.Background()
	cons, err := js.Consumer(ctx, streams.ChatStream, streams.PersistChatConsumer.Name)
	testenv.Eventually(t, 10*time.Second, "every chat event acknowledged", func() bool {
		if err != nil {
			cons, err = js.Consumer(ctx, streams.ChatStream, streams.PersistChatConsumer.Name)
			return false
		}
		info, ierr := cons.Info(ctx)
		return ierr == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0 && info.NumPending == 0
	})
}

// The persist role projects CHAT: what the store shows of each session is
// what streams.Transcript folds from the same events, field by field.
func TestChatProjectionIsTheTranscript(t *testing.T) {
	pool := newDB(t)
	js := docsStreams(t)
	runProjector(t, pool, js)
	evs := chatHistory(t, js)
	waitChatProjected(t, js, evs[len(evs)-1].Seq)

	// The script means what it says: the fold's own view of s1.
	tr := transcript(t, evs, "alice", "s1")
	var ids, statuses []string
	for _, m := range tr.Messages {
		ids, statuses = append(ids, m.ID), append(statuses, m.Status)
	}
	wantIDs := []string{"q1", "a1", "q2", "a3", "q3", "a4", "q4", "a5", "q5", "a6"}
	wantStatuses := []string{"sent", "complete", "sent", "complete", "sent", "incomplete", "sent", "failed", "sent", "answering"}
	if !reflect.DeepEqual(ids, wantIDs) || !reflect.DeepEqual(statuses, wantStatuses) || tr.Messages[5].Content != "Termination for convenience" {
		t.Fatalf("the fold of s1: %v %v; want %v %v", ids, statuses, wantIDs, wantStatuses)
	}

	for _, s := range []struct{ owner, id string }{{"alice", "s1"}, {"alice", "s2"}, {"bob", "s3"}} {
		assertProjected(t, pool, evs, s.owner, s.id)
	}
	// The deleted session's messages and events are gone, not hidden.
	if n := count(t, pool, "SELECT (SELECT count(*) FROM chat_messages WHERE session_id = 's2') + (SELECT count(*) FROM chat_events WHERE session_id = 's2')"); n != 0 {
		t.Fatalf("deleted session s2 keeps %d rows", n)
	}
	assertNoDeadLetters(t, js)
}

// Every event delivered again, in order, in reverse, in batches, changes
// nothing; events delivered in any order and twice give the rows of the
// in-order projection; and the rows plus the events after their sequence
// fold into the whole transcript (read-your-writes).
func TestChatRedeliveryAndOrderChangeNothing(t *testing.T) {
	ctx := context.Background()
	js := docsStreams(t)
	evs := chatHistory(t, js)
	pool := newDB(t)
	p := persist.New(pool, zerolog.New(zerolog.NewTestWriter(t)))
	for _, ev := range evs {
		if err := p.HandleChat(ctx, ev); err != nil {
			t.Fatalf("%s: %v", ev.ID, err)
		}
	}
	want := chatSnap(t, pool)
	assertProjected(t, pool, evs, "alice", "s1")

	for range 2 {
		if err := p.HandleChatBatch(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if err := p.HandleChat(ctx, evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := chatSnap(t, pool); got != want {
		t.Fatalf("events delivered again changed the rows\n got: %s\nwant: %s", got, want)
	}

	for seed := range uint64(3) {
		reset := func() {
			if _, err := pool.Exec(ctx, "TRUNCATE chat_sessions, chat_events, chat_messages"); err != nil {
				t.Fatal(err)
			}
		}
		reset()
		rng := rand.New(rand.NewPCG(seed, 13))
		shuffled := shuffledTwice(evs, rng)
		for len(shuffled) > 0 {
			n := min(1+rng.IntN(4), len(shuffled))
			if err := p.HandleChatBatch(ctx, shuffled[:n]); err != nil {
				t.Fatal(err)
			}
			shuffled = shuffled[n:]
		}
		if got := chatSnap(t, pool); got != want {
			t.Fatalf("seed %d: shuffled, duplicated delivery differs from in-order\n got: %s\nwant: %s", seed, got, want)
		}

		// Read-your-writes: project a prefix, then fold the rest on top.
		reset()
		k := 1 + rng.IntN(len(evs)-1)
		if err := p.HandleChatBatch(ctx, evs[:k]); err != nil {
			t.Fatal(err)
		}
		c, msgs, seq, err := store.New(pool).ChatSession(ctx, "alice", "s1")
		if err != nil {
			t.Fatalf("prefix of %d events: %v", k, err)
		}
		tr := store.ChatTranscript(c, msgs, seq)
		for _, ev := range evs {
			if ev.Owner == "alice" && ev.Subject == "s1" && ev.Seq > seq {
				if err := tr.Apply(ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		full := transcript(t, evs, "alice", "s1")
		if tr.Seq != full.Seq {
			t.Fatalf("prefix of %d events, then the rest: seq %d, want %d", k, tr.Seq, full.Seq)
		}
		assertMessages(t, tr.Messages, full.Messages)
	}
}

// Events the projection must never apply are permanent failures and
// change nothing.
func TestChatUnprojectableEventsArePermanent(t *testing.T) {
	ctx := context.Background()
	pool := newDB(t)
	p := persist.New(pool, zerolog.Nop())
	mk := func(owner, session string, typ streams.EventType, key string, data any, seq uint64) *streams.Event {
		ev, err := streams.NewChatEvent("/test", streams.ChatMeta{Owner: owner, Session: session}, typ, key, data)
		if err != nil {
			t.Fatal(err)
		}
		ev.Seq = seq
		return ev
	}
	if err := p.HandleChat(ctx, mk("alice", "s1", streams.ChatCreated, "", streams.ChatCreatedData{Title: "t"}, 1)); err != nil {
		t.Fatal(err)
	}
	before := chatSnap(t, pool)

	// mallory names alice's session.
	assertPermanent(t, p.HandleChat(ctx, mk("mallory", "s1", streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "x"}, 2)), "owner-mismatch")
	// A payload the fold cannot decode would break every later fold.
	bad := mk("alice", "s1", streams.ChatAsked, "a1", nil, 3)
	bad.Data = json.RawMessage(`{"message_id": 7}`)
	assertPermanent(t, p.HandleChat(ctx, bad), "bad-event")
	// Without its stream sequence an event has no place in the fold.
	assertPermanent(t, p.HandleChat(ctx, mk("alice", "s1", streams.ChatDeleted, "", streams.ChatDeletedData{}, 0)), "bad-event")
	if after := chatSnap(t, pool); after != before {
		t.Fatalf("refused events changed the rows\nbefore: %s\n after: %s", before, after)
	}
}
