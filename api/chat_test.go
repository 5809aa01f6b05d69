package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// chatSession is a session as the API answers it.
type chatSession struct {
	ID         string                `json:"id"`
	Title      string                `json:"title"`
	DocumentID string                `json:"document_id"`
	Messages   []streams.ChatMessage `json:"messages"`
}

// createChat opens a session as owner with the JSON body given.
func (e *env) createChat(owner, body string) chatSession {
	e.t.Helper()
	r := e.do(http.MethodPost, "/api/v1/chat/sessions", owner, strings.NewReader(body), "Content-Type", "application/json")
	expect(e.t, r, http.StatusCreated)
	var s chatSession
	r.json(e.t, &s)
	if r.Header.Get("Location") != "/api/v1/chat/sessions/"+s.ID {
		e.t.Fatalf("Location %q for session %s", r.Header.Get("Location"), s.ID)
	}
	return s
}

// getChat reads a session as owner.
func (e *env) getChat(owner, id string) chatSession {
	e.t.Helper()
	r := e.get("/api/v1/chat/sessions/"+id, owner)
	expect(e.t, r, http.StatusOK)
	var s chatSession
	r.json(e.t, &s)
	return s
}

// waitChat waits until the read model has applied the session's events
// up to stream sequence seq.
func (e *env) waitChat(owner, id string, seq uint64) {
	e.t.Helper()
	st := store.New(e.pool)
	testenv.Eventually(e.t, 10*time.Second, "chat session "+id+" projected up to "+itoa(int(seq)), func() bool {
		_, _, applied, err := st.ChatSession(context.Background(), owner, id)
		return err == nil && applied >= seq
	})
}

// asked are the ids of a question and of its answer.
type asked struct {
	MessageID string `json:"message_id"`
	AnswerID  string `json:"answer_id"`
}

// postQuestion asks a question as owner and returns the answer.
func (e *env) postQuestion(owner, id, content string) response {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"content": content})
	return e.do(http.MethodPost, "/api/v1/chat/sessions/"+id+"/messages", owner, strings.NewReader(string(body)), "Content-Type", "application/json")
}

// ask asks a question that must be accepted.
func (e *env) ask(owner, id, content string) asked {
	e.t.Helper()
	r := e.postQuestion(owner, id, content)
	expect(e.t, r, http.StatusAccepted)
	var a asked
	r.json(e.t, &a)
	return a
}

// chatFrame is one event of a chat stream.
type chatFrame struct {
	ID, Event string
	Data      json.RawMessage
}

func (f chatFrame) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(f.Data, v); err != nil {
		t.Fatalf("%s event %s: %v: %s", f.Event, f.ID, err, f.Data)
	}
}

// chatStream is an open event stream of a session, read in the
// background.
type chatStream struct {
	t      testing.TB
	frames chan chatFrame // closed when the stream ends
	cancel context.CancelFunc
}

// openChat opens the events of session id as owner (header: name, value,
// ...); the stream must be accepted.
func (e *env) openChat(owner, id string, header ...string) *chatStream {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := e.getStream(ctx, "/api/v1/chat/sessions/"+id+"/events", owner, header...)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		e.t.Fatalf("events of chat session %s: %d %s", id, resp.StatusCode, raw)
	}
	cs := &chatStream{t: e.t, frames: make(chan chatFrame, 1024), cancel: cancel}
	go func() {
		defer close(cs.frames)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var f chatFrame
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "" && f.Event != "":
				cs.frames <- f
				f = chatFrame{}
			case strings.HasPrefix(line, "id: "):
				f.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				f.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				f.Data = json.RawMessage(line[6:])
			}
		}
	}()
	e.t.Cleanup(cs.close)
	return cs
}

func (cs *chatStream) close() { cs.cancel() }

// next is the stream's next event, which must come within wait.
func (cs *chatStream) next(wait time.Duration) chatFrame {
	cs.t.Helper()
	select {
	case f, ok := <-cs.frames:
		if !ok {
			cs.t.Fatal("the chat stream ended")
		}
		return f
	case <-time.After(wait):
		cs.t.Fatalf("no chat event within %s", wait)
	}
	return chatFrame{}
}

// expect reads the next event and checks its type.
func (cs *chatStream) expect(event string) chatFrame {
	cs.t.Helper()
	f := cs.next(10 * time.Second)
	if f.Event != event {
		cs.t.Fatalf("chat event %s (id %s): %s, want a %s event", f.Event, f.ID, f.Data, event)
	}
	return f
}

// ends checks that the stream ends within wait, with no more events.
func (cs *chatStream) ends(wait time.Duration) {
	cs.t.Helper()
	select {
	case f, ok := <-cs.frames:
		if ok {
			cs.t.Fatalf("chat event %s %s %s where the stream should end", f.Event, f.ID, f.Data)
		}
	case <-time.After(wait):
		cs.t.Fatalf("the chat stream is still open after %s", wait)
	}
}

// answerer plays the analyzer's side of the chat contract for one answer,
// as streams/chat.go has it: started, then deltas at byte offsets on the
// live subject with a heartbeat every second, the text so far to any
// sync request, and the stored end.
type answerer struct {
	e        *env
	m        streams.ChatMeta
	question string
	answer   string
	nc       *nats.Conn

	mu     sync.Mutex
	text   string
	sync   *nats.Subscription
	silent chan struct{} // closed: no more heartbeats
	once   sync.Once
}

func (e *env) answerer(owner, session string, q asked) *answerer {
	e.t.Helper()
	a := &answerer{e: e, m: streams.ChatMeta{Owner: owner, Session: session, CorrelationID: "test-" + q.AnswerID},
		question: q.MessageID, answer: q.AnswerID, nc: e.js.Conn(), silent: make(chan struct{})}
	var err error
	a.sync, err = a.nc.Subscribe(streams.ChatSyncSubject(owner, session, q.AnswerID), func(msg *nats.Msg) {
		a.mu.Lock()
		raw, _ := json.Marshal(streams.ChatLive{Kind: streams.LiveDelta, AnswerID: a.answer, Text: a.text})
		a.mu.Unlock()
		_ = msg.Respond(raw)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := a.nc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	a.live(streams.ChatLive{Kind: streams.LiveStarted, AnswerID: a.answer, Model: "claude-test"})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-a.silent:
				return
			case <-tick.C:
				a.live(streams.ChatLive{Kind: streams.LiveHeartbeat, AnswerID: a.answer})
			}
		}
	}()
	e.t.Cleanup(a.die)
	return a
}

func (a *answerer) live(m streams.ChatLive) {
	raw, _ := json.Marshal(m)
	if err := a.nc.Publish(streams.ChatLiveSubject(a.m.Owner, a.m.Session), raw); err != nil {
		a.e.t.Error(err)
	}
}

// write adds text to the answer and sends it as a delta.
func (a *answerer) write(text string) {
	a.mu.Lock()
	offset := len(a.text)
	a.text += text
	a.mu.Unlock()
	a.live(streams.ChatLive{Kind: streams.LiveDelta, AnswerID: a.answer, Offset: offset, Text: text})
}

// die stops the answerer without a word, as a killed analyzer does.
func (a *answerer) die() {
	a.once.Do(func() {
		close(a.silent)
		_ = a.sync.Unsubscribe()
		_ = a.nc.Flush()
	})
}

// end stores how the answer ended.
func (a *answerer) end(t streams.EventType, d streams.ChatAnswerData) *streams.Event {
	a.e.t.Helper()
	a.die()
	ev, err := streams.NewChatEvent("/test/analyzer", a.m, t, a.answer, d)
	if err != nil {
		a.e.t.Fatal(err)
	}
	if err := a.e.pub.Publish(context.Background(), ev); err != nil {
		a.e.t.Fatal(err)
	}
	return ev
}

// finish stores the answer as complete, with what an analyzer reports.
func (a *answerer) finish() *streams.Event {
	a.mu.Lock()
	text := a.text
	a.mu.Unlock()
	return a.end(streams.ChatAnswered, streams.ChatAnswerData{
		AnswerID: a.answer, MessageID: a.question, Content: text, Model: "claude-test",
		InputTokens: 1500, OutputTokens: 120, CostUSD: 0.00123456789, LatencyMS: 2100, FirstTokenMS: 400,
		Citations: []streams.Citation{{Ref: 1, StartLine: 3, EndLine: 4, Quote: "liability is capped"}},
	})
}

// chatTurn is a session being followed with a question being answered.
type chatTurn struct {
	s        chatSession
	events   *chatStream
	q        asked
	question chatFrame // the question's event
	a        *answerer
}

// startChat opens a session as owner with body, follows its events, asks
// question and has an answerer take it.
func (e *env) startChat(owner, body, question string) chatTurn {
	e.t.Helper()
	var c chatTurn
	c.s = e.createChat(owner, body)
	c.events = e.openChat(owner, c.s.ID)
	c.q = e.ask(owner, c.s.ID, question)
	c.question = c.events.expect("question")
	c.a = e.answerer(owner, c.s.ID, c.q)
	return c
}

// TestChatAnswerStreamsDeltaByDelta: a question about a document streams
// its answer over SSE delta by delta, in order, each delta's id the
// question's sequence and the text's end offset; the final event is the
// whole message, equal to the session's stored one; deleting the session
// ends the stream.
func TestChatAnswerStreamsDeltaByDelta(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "lease.txt", "The liability is capped at the fees paid.", 70, "high")
	c := e.startChat(alice, `{"document_id":"`+d.id+`"}`, "What should we negotiate first?")
	s, cs, q, qf, a := c.s, c.events, c.q, c.question, c.a
	if s.Title != "lease.txt" || s.DocumentID != d.id || len(s.Messages) != 0 {
		t.Fatalf("new session %+v: want the document's filename as its title", s)
	}
	var question struct {
		streams.ChatMessage
		AnswerID string `json:"answer_id"`
	}
	qf.decode(t, &question)
	if question.ID != q.MessageID || question.AnswerID != q.AnswerID || question.Content != "What should we negotiate first?" || question.Role != streams.RoleUser {
		t.Fatalf("question event %s, want message %s awaiting %s", qf.Data, q.MessageID, q.AnswerID)
	}
	parts := []string{"Negotiate ", "the liability cap ", "first [1]. ", "It is the largest exposure."}
	offset := 0
	for _, p := range parts {
		a.write(p)
		f := cs.expect("delta")
		var got struct {
			AnswerID string `json:"answer_id"`
			Offset   int    `json:"offset"`
			Text     string `json:"text"`
		}
		f.decode(t, &got)
		if got.AnswerID != q.AnswerID || got.Offset != offset || got.Text != p || f.ID != qf.ID+"."+itoa(offset+len(p)) {
			t.Fatalf("delta %s %s, want %q at %d with id %s.%d", f.ID, f.Data, p, offset, qf.ID, offset+len(p))
		}
		offset += len(p)
	}
	end := a.finish()
	af := cs.expect("answer")
	var final streams.ChatMessage
	af.decode(t, &final)
	if af.ID != itoa(int(end.Seq)) || final.ID != q.AnswerID || final.Status != streams.MessageComplete ||
		final.Content != strings.Join(parts, "") || final.QuestionID != q.MessageID || final.Model != "claude-test" ||
		final.OutputTokens != 120 || len(final.Citations) != 1 {
		t.Fatalf("answer event %s %s", af.ID, af.Data)
	}
	e.waitChat(alice, s.ID, end.Seq) // read from the read model, not the stream
	stored := e.getChat(alice, s.ID)
	if len(stored.Messages) != 2 {
		t.Fatalf("session holds %d messages: %+v", len(stored.Messages), stored.Messages)
	}
	want, _ := json.Marshal(stored.Messages[1])
	got, _ := json.Marshal(final)
	if string(got) != string(want) {
		t.Fatalf("the answer event differs from the stored message:\nevent  %s\nstored %s", got, want)
	}

	expect(t, e.do(http.MethodDelete, "/api/v1/chat/sessions/"+s.ID, alice, nil), http.StatusNoContent)
	cs.expect("deleted")
	cs.ends(5 * time.Second)
	e.get("/api/v1/chat/sessions/"+s.ID, alice).problem(t, http.StatusNotFound, "not-found")
	e.get("/api/v1/chat/sessions/"+s.ID+"/events", alice).problem(t, http.StatusNotFound, "not-found")
	expect(t, e.do(http.MethodDelete, "/api/v1/chat/sessions/"+s.ID, alice, nil), http.StatusNoContent)
}

// TestChatResumeMidAnswer: a client that drops mid-answer and reconnects
// to another replica with its last delta's id gets exactly the text it
// missed, then the rest live: nothing twice, nothing lost. One that
// reconnects after the answer ended gets the answer event.
func TestChatResumeMidAnswer(t *testing.T) {
	e := newEnv(t)
	other := *e
	_, other.url = e.serve()
	c := e.startChat(alice, `{"title":"resume"}`, "Which clause matters most?")
	s, cs, a := c.s, c.events, c.a
	var seen strings.Builder
	var last chatFrame
	delta := func(f chatFrame, wantOffset int) string {
		t.Helper()
		var d struct {
			Offset int    `json:"offset"`
			Text   string `json:"text"`
		}
		f.decode(t, &d)
		if d.Offset != wantOffset {
			t.Fatalf("delta %s at offset %d, want %d (the text so far: %q)", f.Data, d.Offset, wantOffset, seen.String())
		}
		seen.WriteString(d.Text)
		return d.Text
	}
	for _, p := range []string{"Clause 4 ", "caps liability. "} {
		a.write(p)
		last = cs.expect("delta")
		delta(last, seen.Len())
	}
	cs.close()
	a.write("Clause 9 ")
	a.write("lets them terminate. ")

	resumed := other.openChat(alice, s.ID, "Last-Event-ID", last.ID)
	if got := delta(resumed.expect("delta"), seen.Len()); got != "Clause 9 lets them terminate. " {
		t.Fatalf("first delta after the resume %q, want exactly the text missed", got)
	}
	a.write("Both matter.")
	last = resumed.expect("delta")
	delta(last, seen.Len())
	end := a.finish()
	var final streams.ChatMessage
	resumed.expect("answer").decode(t, &final)
	if final.Content != seen.String() || seen.String() != "Clause 4 caps liability. Clause 9 lets them terminate. Both matter." {
		t.Fatalf("relayed %q, answer %q", seen.String(), final.Content)
	}
	resumed.close()

	// The answer ended while the client was away: its event, not deltas.
	after := e.openChat(alice, s.ID, "Last-Event-ID", last.ID)
	f := after.expect("answer")
	var got streams.ChatMessage
	f.decode(t, &got)
	if f.ID != itoa(int(end.Seq)) || got.Content != final.Content || got.Status != streams.MessageComplete {
		t.Fatalf("resume after the end: %s %s", f.ID, f.Data)
	}
}

// TestChatWatchdogEndsASilentAnswer: an answerer that goes silent
// mid-answer (killed) ends in an error event within 10 s, with the text
// relayed kept as incomplete, and its own late end is dropped as a
// duplicate; a question no replica takes ends the same way, as failed.
func TestChatWatchdogEndsASilentAnswer(t *testing.T) {
	e := newEnv(t) // the default watchdog, 5 s
	c := e.startChat(alice, `{}`, "Is the indemnity mutual?")
	s, cs, q, a := c.s, c.events, c.q, c.a
	if s.Title != "New chat" {
		t.Fatalf("a free session without a title is called %q", s.Title)
	}
	a.write("Partly: ")
	a.write("the supplier's is capped")
	cs.expect("delta")
	cs.expect("delta")
	a.die()
	killed := time.Now()
	f := cs.next(10 * time.Second)
	var m streams.ChatMessage
	f.decode(t, &m)
	if f.Event != "error" || m.ID != q.AnswerID || m.Status != streams.MessageIncomplete || m.Content != "Partly: the supplier's is capped" ||
		m.ReasonClass != streams.ClassAnswerInterrupted || m.Reason != streams.ChatClassReason(streams.ClassAnswerInterrupted) {
		t.Fatalf("after the answerer died: %s %s", f.Event, f.Data)
	}
	t.Logf("error event %s after the answerer went silent", time.Since(killed).Round(time.Millisecond))
	late := a.end(streams.ChatAnswered, streams.ChatAnswerData{AnswerID: q.AnswerID, MessageID: q.MessageID, Content: "Partly: the supplier's is capped, the customer's is not."})
	if !late.Duplicate {
		t.Fatal("the late end of the answer was stored: first end must win")
	}
	if got := e.getChat(alice, s.ID).Messages[1]; got.Status != streams.MessageIncomplete || got.Content != m.Content {
		t.Fatalf("stored answer %+v", got)
	}

	q2 := e.ask(alice, s.ID, "Anyone there?") // nobody takes it
	asked := time.Now()
	cs.expect("question")
	f = cs.next(10 * time.Second)
	f.decode(t, &m)
	if f.Event != "error" || m.ID != q2.AnswerID || m.Status != streams.MessageFailed || m.Content != "" || m.ReasonClass != streams.ClassAnswerInterrupted {
		t.Fatalf("a question nobody took: %s %s", f.Event, f.Data)
	}
	t.Logf("error event %s after a question nobody took", time.Since(asked).Round(time.Millisecond))
}

// TestChatOneAnswerAtATime: while an answer is being written the session
// refuses another question and a regeneration (409); an ended answer can
// be regenerated; of questions raced at once exactly one is asked.
func TestChatOneAnswerAtATime(t *testing.T) {
	e := newEnv(t)
	s := e.createChat(alice, `{}`)
	q := e.ask(alice, s.ID, "First?")
	a := e.answerer(alice, s.ID, q)
	regenerate := func(answer string) response {
		return e.do(http.MethodPost, "/api/v1/chat/sessions/"+s.ID+"/messages/"+answer+"/regenerate", alice, nil)
	}
	e.postQuestion(alice, s.ID, "Second?").problem(t, http.StatusConflict, "conflict")
	regenerate(q.AnswerID).problem(t, http.StatusConflict, "conflict")
	regenerate("NOSUCHANSWER").problem(t, http.StatusNotFound, "not-found")
	regenerate(q.MessageID).problem(t, http.StatusNotFound, "not-found") // a question is not an answer
	a.write("An answer.")
	a.finish()

	r := regenerate(q.AnswerID)
	expect(t, r, http.StatusAccepted)
	var again asked
	r.json(t, &again)
	if again.MessageID != q.MessageID || again.AnswerID == q.AnswerID {
		t.Fatalf("regenerated: %+v, want the same question %s with a new answer", again, q.MessageID)
	}
	e.answerer(alice, s.ID, again) // writing it
	msgs := e.getChat(alice, s.ID).Messages
	if len(msgs) != 2 || msgs[1].ID != again.AnswerID || msgs[1].Status != streams.MessageAnswering {
		t.Fatalf("after the regeneration: %+v", msgs)
	}
	e.postQuestion(alice, s.ID, "Third?").problem(t, http.StatusConflict, "conflict")

	// Questions raced in several sessions at once, each sent as soon as
	// all are ready: in each session exactly one is asked.
	const sessions, n = 4, 6
	raced := make([]chatSession, sessions)
	for i := range raced {
		raced[i] = e.createChat(alice, `{}`)
	}
	statuses := make([]chan int, sessions)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range raced {
		statuses[i] = make(chan int, n)
		for j := range n {
			wg.Go(func() {
				body, _ := json.Marshal(map[string]string{"content": "Question " + itoa(j)})
				<-start
				r, err := e.send(http.MethodPost, "/api/v1/chat/sessions/"+raced[i].ID+"/messages", alice, strings.NewReader(string(body)), "Content-Type", "application/json")
				if err != nil {
					t.Error(err)
					return
				}
				statuses[i] <- r.StatusCode
			})
		}
	}
	close(start)
	wg.Wait()
	for i, ch := range statuses {
		close(ch)
		counts := map[int]int{}
		for st := range ch {
			counts[st]++
		}
		if counts[http.StatusAccepted] != 1 || counts[http.StatusConflict] != n-1 {
			t.Fatalf("%d questions raced in session %d: %v, want one 202 and %d 409", n, i, counts, n-1)
		}
		if got := e.getChat(alice, raced[i].ID).Messages; len(got) != 2 {
			t.Fatalf("raced session %d holds %d messages, want one question and its answer", i, len(got))
		}
	}
}

// TestChatRefusesASpentBudget: with the owner's daily model budget spent,
// questions and regenerations get 429 budget-spent with Retry-After;
// another owner's go through.
func TestChatRefusesASpentBudget(t *testing.T) {
	e := newEnv(t)
	s := e.createChat(alice, `{}`)
	q := e.ask(alice, s.ID, "Before the budget ran out?")
	e.answerer(alice, s.ID, q).finish()
	budget := e.deps.Quota.Budget(1000)
	ctx := context.Background()
	if err := budget.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := budget.Spend(ctx, alice, "some-document", 1, 1, 1000); err != nil {
		t.Fatal(err)
	}
	tooMany(t, e.postQuestion(alice, s.ID, "And now?"), "budget-spent", 24*3600, "budget of 1000 tokens is spent")
	tooMany(t, e.do(http.MethodPost, "/api/v1/chat/sessions/"+s.ID+"/messages/"+q.AnswerID+"/regenerate", alice, nil), "budget-spent", 24*3600)
	bobs := e.createChat(bob, `{}`)
	e.ask(bob, bobs.ID, "Mine?")
}

// TestChatSessionsAreTheOwners: bob gets 404 on every route of alice's
// session, exactly as for a session that does not exist, and changes
// nothing of it.
func TestChatSessionsAreTheOwners(t *testing.T) {
	e := newEnv(t)
	s := e.createChat(alice, `{"title":"alice's"}`)
	q := e.ask(alice, s.ID, "Private question?")
	a := e.answerer(alice, s.ID, q)
	a.write("Private answer.")
	a.finish()
	log := streams.NewChatLog(e.js)
	before, err := log.Last(context.Background(), streams.ChatFilter(alice, s.ID))
	if err != nil || before == nil {
		t.Fatal(before, err)
	}
	base := "/api/v1/chat/sessions/"
	for _, id := range []string{s.ID, "NOSUCHSESSION"} {
		for _, req := range []struct{ method, path, body string }{
			{http.MethodGet, base + id, ""},
			{http.MethodGet, base + id + "/events", ""},
			{http.MethodPost, base + id + "/messages", `{"content":"mine now?"}`},
			{http.MethodPost, base + id + "/messages/" + q.AnswerID + "/regenerate", ""},
			{http.MethodDelete, base + id, ""},
		} {
			r := e.do(req.method, req.path, bob, strings.NewReader(req.body), "Content-Type", "application/json")
			if p := r.problem(t, http.StatusNotFound, "not-found"); strings.Contains(p.Detail, "alice") || strings.Contains(string(r.body), "Private") {
				t.Fatalf("%s %s as bob: %s", req.method, req.path, r.body)
			}
		}
	}
	e.waitChat(alice, s.ID, before.Seq)
	var list struct{ Items []any }
	r := e.get("/api/v1/chat/sessions", bob)
	expect(t, r, http.StatusOK)
	if r.json(t, &list); len(list.Items) != 0 {
		t.Fatalf("bob's list shows %s", r.body)
	}
	after, err := log.Last(context.Background(), streams.ChatFilter(alice, s.ID))
	if err != nil || after.Seq != before.Seq {
		t.Fatalf("bob's requests moved alice's session from %d to %d (%v)", before.Seq, after.Seq, err)
	}
	if got := e.getChat(alice, s.ID); len(got.Messages) != 2 || got.Messages[1].Content != "Private answer." {
		t.Fatalf("alice's session after bob: %+v", got)
	}
}

// TestChatReadsItsOwnWrites: a session and a question just posted are
// there at once, whatever the read model has applied: a session the read
// model has not seen is read from the stream, and one it has is read from
// it with the stream's newer events on top, even once the stream no
// longer holds the older ones.
func TestChatReadsItsOwnWrites(t *testing.T) {
	e := newEnv(t)
	old := e.startChat(alice, `{"title":"projected"}`, "Asked before?")
	old.a.write("Yes.")
	e.waitChat(alice, old.s.ID, old.a.finish().Seq)
	e.stopProjector()
	// The stream forgets what the read model has (as after CHAT's MaxAge).
	st, err := e.js.Stream(context.Background(), streams.ChatStream)
	if err != nil {
		t.Fatal(err)
	}
	last, err := streams.NewChatLog(e.js).Last(context.Background(), streams.ChatFilter(alice, old.s.ID))
	if err != nil || last == nil {
		t.Fatal(last, err)
	}
	if err := st.Purge(context.Background(), jetstream.WithPurgeSequence(last.Seq+1)); err != nil {
		t.Fatal(err)
	}

	s := e.createChat(alice, `{"title":"fresh"}`)
	if got := e.getChat(alice, s.ID); got.Title != "fresh" || len(got.Messages) != 0 {
		t.Fatalf("the session just created: %+v", got)
	}
	for _, c := range []struct {
		s     chatSession
		title string
		prior int // messages before the question
	}{{s, "fresh", 0}, {old.s, "projected", 2}} {
		q := e.ask(alice, c.s.ID, "Just asked?")
		got := e.getChat(alice, c.s.ID)
		msgs := got.Messages
		if got.Title != c.title || len(msgs) != c.prior+2 {
			t.Fatalf("session %q after a question: %+v", c.title, got)
		}
		if c.prior > 0 && (msgs[1].Content != "Yes." || msgs[1].Status != streams.MessageComplete) {
			t.Fatalf("session %q lost what the read model has: %+v", c.title, msgs)
		}
		if q1, a1 := msgs[c.prior], msgs[c.prior+1]; q1.ID != q.MessageID || q1.Content != "Just asked?" || a1.ID != q.AnswerID || a1.Status != streams.MessageAnswering {
			t.Fatalf("session %q: the question just asked: %+v", c.title, msgs)
		}
	}
}

// TestChatDecidesOnTheReadModelOnlyIfTheStreamAgrees: a question in a
// session the read model shows settled is decided on the read model, but
// stored only if the stream holds nothing newer of the session; when the
// read model lags, the question is decided again on the stream: refused
// while an answer the read model has not seen is being written, asked
// once that answer has ended.
func TestChatDecidesOnTheReadModelOnlyIfTheStreamAgrees(t *testing.T) {
	e := newEnv(t)
	s := e.createChat(alice, `{}`)
	first := e.ask(alice, s.ID, "First?")
	a := e.answerer(alice, s.ID, first)
	a.write("One.")
	e.waitChat(alice, s.ID, a.finish().Seq)
	e.stopProjector() // the read model stays settled after the first answer
	second := e.ask(alice, s.ID, "Second?")
	b := e.answerer(alice, s.ID, second) // being written, unseen by the read model
	e.postQuestion(alice, s.ID, "Third?").problem(t, http.StatusConflict, "conflict")
	e.do(http.MethodPost, "/api/v1/chat/sessions/"+s.ID+"/messages/"+first.AnswerID+"/regenerate", alice, nil).problem(t, http.StatusConflict, "conflict")
	b.write("Two.")
	b.finish()
	third := e.ask(alice, s.ID, "Third?")
	msgs := e.getChat(alice, s.ID).Messages
	if len(msgs) != 6 || msgs[3].Content != "Two." || msgs[3].Status != streams.MessageComplete || msgs[4].ID != third.MessageID || msgs[5].Status != streams.MessageAnswering {
		t.Fatalf("after three questions, the read model behind: %+v", msgs)
	}
}

// TestChatSessionsList: the owner's sessions, newest first, in pages,
// without deleted ones or another owner's.
func TestChatSessionsList(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.createChat(alice, `{"title":"s`+itoa(i)+`"}`).ID)
	}
	e.createChat(bob, `{"title":"bob's"}`)
	gone := e.createChat(alice, `{"title":"gone"}`)
	expect(t, e.do(http.MethodDelete, "/api/v1/chat/sessions/"+gone.ID, alice, nil), http.StatusNoContent)
	for _, id := range ids {
		e.waitChat(alice, id, 1)
	}
	testenv.Eventually(t, 10*time.Second, "the deletion projected", func() bool {
		_, _, _, err := store.New(e.pool).ChatSession(context.Background(), alice, gone.ID)
		return errors.Is(err, store.ErrDeleted)
	})
	type page struct {
		Items []struct {
			ID, Title    string
			MessageCount int `json:"message_count"`
		}
		NextCursor string `json:"next_cursor"`
	}
	var got []string
	var p page
	cursor := ""
	for {
		r := e.get("/api/v1/chat/sessions?limit=2&cursor="+cursor, alice)
		expect(t, r, http.StatusOK)
		r.json(t, &p)
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		if cursor = p.NextCursor; cursor == "" {
			break
		}
	}
	if strings.Join(got, " ") != strings.Join([]string{ids[2], ids[1], ids[0]}, " ") {
		t.Fatalf("listed %v, want %v newest first", got, ids)
	}
	// A cursor of the document list is not one of this list.
	e.analyzed(alice, "a.txt", "text", 10, "low")
	e.analyzed(alice, "b.txt", "text", 10, "low")
	var docs struct {
		NextCursor string `json:"next_cursor"`
	}
	e.get("/api/v1/documents?limit=1", alice).json(t, &docs)
	if docs.NextCursor == "" {
		t.Fatal("no next page of documents")
	}
	e.get("/api/v1/chat/sessions?cursor="+docs.NextCursor, alice).problem(t, http.StatusBadRequest, "bad-parameter")
}

// TestChatRequestsAreChecked: what a session and a question may be.
func TestChatRequestsAreChecked(t *testing.T) {
	e := newEnv(t)
	bobs := e.analyzed(bob, "bobs.txt", "text", 10, "low")
	gone := e.analyzed(alice, "gone.txt", "text", 10, "low")
	expect(t, e.do(http.MethodDelete, "/api/v1/documents/"+gone.id, alice, nil), http.StatusNoContent)
	post := func(body string) response {
		return e.do(http.MethodPost, "/api/v1/chat/sessions", alice, strings.NewReader(body), "Content-Type", "application/json")
	}
	post(`{"document_id":"`+bobs.id+`"}`).problem(t, http.StatusNotFound, "not-found")
	post(`{"document_id":"`+gone.id+`"}`).problem(t, http.StatusNotFound, "not-found")
	post(`{"title":"`+strings.Repeat("t", streams.MaxChatTitle+1)+`"}`).problem(t, http.StatusBadRequest, "bad-parameter")
	post(`{"topic":"x"}`).problem(t, http.StatusBadRequest, "bad-body")
	if s := e.createChat(alice, `{"title":"`+strings.Repeat("é", streams.MaxChatTitle)+`"}`); len([]rune(s.Title)) != streams.MaxChatTitle {
		t.Fatalf("a title of %d characters became %q", streams.MaxChatTitle, s.Title)
	}

	s := e.createChat(alice, `{}`)
	e.postQuestion(alice, s.ID, "").problem(t, http.StatusUnprocessableEntity, "bad-content")
	e.postQuestion(alice, s.ID, " \n ").problem(t, http.StatusUnprocessableEntity, "bad-content")
	e.postQuestion(alice, s.ID, strings.Repeat("é", streams.MaxChatQuestion+1)).problem(t, http.StatusUnprocessableEntity, "bad-content")
	path := "/api/v1/chat/sessions/" + s.ID + "/messages"
	e.do(http.MethodPost, path, alice, strings.NewReader(`{}`), "Content-Type", "application/json").problem(t, http.StatusBadRequest, "bad-body")
	e.do(http.MethodPost, path, alice, strings.NewReader(`{"content":1}`), "Content-Type", "application/json").problem(t, http.StatusBadRequest, "bad-body")
	e.get("/api/v1/chat/sessions/"+s.ID+"/events", alice, "Last-Event-ID", "12.x").problem(t, http.StatusBadRequest, "bad-last-event-id")

	// A question of the longest length is asked, and a free session's
	// question names the owner's analyzed documents for the answerer.
	mine := e.analyzed(alice, "mine.txt", "text", 10, "low")
	q := e.ask(alice, s.ID, strings.Repeat("é", streams.MaxChatQuestion))
	ev, err := streams.NewChatLog(e.js).Last(context.Background(), streams.ChatSubject(alice, s.ID, streams.ChatAsked))
	if err != nil || ev == nil {
		t.Fatal(ev, err)
	}
	var d streams.ChatAskedData
	if err := ev.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.AnswerID != q.AnswerID || len(d.Recent) != 1 || d.Recent[0] != (streams.ChatDocRef{ID: mine.id, Filename: "mine.txt"}) || d.DocumentID != "" {
		t.Fatalf("asked %+v, want alice's one analyzed document in Recent", d)
	}
}

// TestChatStreamsHoldAStreamPlace: a session's event stream takes one of
// the owner's event-stream places like a document's; over the limit it is
// refused with 429, and a place frees when a stream ends.
func TestChatStreamsHoldAStreamPlace(t *testing.T) {
	e := newEnv(t, withAPI(func(c *api.Config) { c.Limits.SSEStreams = 1 }))
	s := e.createChat(alice, `{}`)
	first := e.openChat(alice, s.ID)
	// try opens another stream and leaves at once: the refusal, or 200.
	try := func() response {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/chat/sessions/"+s.ID+"/events", nil)
		req.Header.Set("Authorization", "Bearer "+tokenOf(alice))
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return response{Response: resp}
		}
		raw, _ := io.ReadAll(resp.Body)
		return response{resp, raw}
	}
	tooMany(t, try(), "too-many-streams", 60, "1 event streams open")
	first.close()
	testenv.Eventually(t, 10*time.Second, "a place once the stream ended", func() bool { return try().StatusCode == http.StatusOK })
}
