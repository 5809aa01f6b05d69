package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/streams"
)

// ChatResult is the risk-advice chatbot as its users see it: concurrent
// chats over the HTTP API and SSE, beside the simulator's own time to
// first token in the same run.
type ChatResult struct {
	Chats            int     `json:"chats"`
	QuestionsPerChat int     `json:"questions_per_chat"`
	SimSpeed         float64 `json:"simulator_speed"` // 1: realistic time to first token and token rate
	Ramp             float64 `json:"ramp_seconds"`    // the chats' first questions were spread over it
	Seconds          float64 `json:"seconds"`
	AnswersPerSec    float64 `json:"answers_per_sec"`
	// What became of the questions: every one is counted once, in
	// Answered, Failed, Missing, Refused or NotAsked.
	Asked    int `json:"asked"`     // accepted by the API (202)
	Answered int `json:"answered"`  // ended by an answer event
	Failed   int `json:"failed"`    // ended by an error event (the answer failed or was cut off)
	Missing  int `json:"missing"`   // accepted, but neither event came in time, or the stream broke first
	Refused  int `json:"refused"`   // not accepted by the API
	NotAsked int `json:"not_asked"` // never asked: their chat stopped at an earlier question's trouble
	// Garbled counts ended answers whose delta events do not add up to
	// their final text (a lost, repeated or misplaced delta).
	Garbled    int    `json:"garbled"`
	FirstError string `json:"first_error,omitempty"`
	// FirstToken is from sending the question's POST to the first delta
	// event at the client; Answer to the answer event. Both over answered
	// questions only.
	FirstToken Summary `json:"first_token"`
	Answer     Summary `json:"answer"`
	// Stages split the time to first token of answered questions: ask is
	// from the POST to the question's publication (its created_at), answer
	// from there to the first delta written (the answer's first_token_ms,
	// the model's time to first token included), deliver from there to the
	// client. Different clocks of one machine; first_token_ms is whole
	// milliseconds.
	Stages map[string]Summary `json:"first_token_stages"`
	// Reference is the simulator called directly, at the same concurrency
	// with the same conversations.
	Reference ChatReferenceResult `json:"reference"`
	// Added is the pipeline's time to first token minus the reference's,
	// quantile by quantile: a difference of two distributions, not of
	// paired requests.
	Added   Added            `json:"added_first_token"`
	Process ProcessResources `json:"process"`
	Roles   []system.Usage   `json:"roles,omitempty"`
	transcript
}

// Added is a difference of two latency distributions at some quantiles.
type Added struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// addedBetween is pipeline minus reference at p50 and p99.
func addedBetween(pipeline, reference Summary) Added {
	return Added{P50: pipeline.P50 - reference.P50, P99: pipeline.P99 - reference.P99}
}

// transcript is what the chats said, for the reference to send again.
type transcript struct {
	convs [][]exchange // per chat, its questions in order
}

// exchange is one question of a chat and how its answer ended.
type exchange struct {
	question string
	answer   string // the final text: complete, or what an interrupted answer kept
	status   string // streams.MessageComplete, ...; "" when it never ended
}

// chatQuestions are what the simulated users ask, in turn.
var chatQuestions = []string{
	"What should we negotiate first in a supplier contract that gives us unlimited liability?",
	"How do we keep track of our obligations under the data protection regulation when we use cloud vendors?",
	"Which clauses usually decide whether an indemnity is acceptable for a mid-sized company?",
	"How should a compliance team document the decision to accept a residual risk?",
	"What are the warning signs that a termination clause favours the other party too much?",
	"How often should we review the risk register, and who should take part?",
	"What is a reasonable cap on liability for a software licence, and how is it usually expressed?",
	"How do we assess the risk of a vendor that processes payments on our behalf?",
	"Which questions should we ask before we accept automatic renewal in a service agreement?",
	"How should we prepare for an audit of our anti-bribery controls?",
	"What does a strong business continuity clause contain?",
	"How do penalties for late delivery interact with a limitation of liability?",
}

// chatAnswerTimeout bounds the wait for one answer's end: past it the
// answer is missing. An answer that no replica writes any more ends with
// an error event within seconds (the API's watchdog), so a missing one
// means an event was lost.
const chatAnswerTimeout = 2 * time.Minute

// chatTally counts the questions of many chats.
type chatTally struct {
	firstToken, answer                                  Latencies
	ask, write, deliver                                 Latencies // stages of firstToken
	asked, answered, failed, missing, refused, notAsked atomic.Int64
	garbled                                             atomic.Int64
	firstErr                                            atomic.Value
}

func (t *chatTally) fail(err error) { t.firstErr.CompareAndSwap(nil, err) }

// Chat runs chats concurrent chats, each a free session whose event
// stream is open before it asks: questions questions one after the other,
// the next once the last one's answer (or error) event has arrived. The
// chats ask their first questions one after another over ramp, as users
// do not all press Enter in the same millisecond: without it, chats whose
// answers take the same time ask in lockstep, in bursts of all of them at
// once.
func Chat(ctx context.Context, c *client, chats, questions int, ramp time.Duration) ChatResult {
	res := ChatResult{Chats: chats, QuestionsPerChat: questions, Ramp: ramp.Seconds(), transcript: transcript{convs: make([][]exchange, chats)}}
	var tally chatTally
	var wg sync.WaitGroup
	start := time.Now()
	for i := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := start.Add(ramp * time.Duration(i) / time.Duration(chats))
			res.convs[i] = oneChat(ctx, c, i, questions, first, &tally)
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Asked, res.Answered, res.Failed = int(tally.asked.Load()), int(tally.answered.Load()), int(tally.failed.Load())
	res.Missing, res.Refused, res.NotAsked = int(tally.missing.Load()), int(tally.refused.Load()), int(tally.notAsked.Load())
	res.Garbled = int(tally.garbled.Load())
	res.AnswersPerSec = float64(res.Answered) / res.Seconds
	res.FirstToken, res.Answer = tally.firstToken.Summary(), tally.answer.Summary()
	res.Stages = map[string]Summary{"ask": tally.ask.Summary(), "answer": tally.write.Summary(), "deliver": tally.deliver.Summary()}
	if err, _ := tally.firstErr.Load().(error); err != nil {
		res.FirstError = err.Error()
	}
	return res
}

// oneChat opens a session and its event stream and asks its questions,
// returning what was said. Trouble with a question (refused, missing, the
// stream broken) ends the chat: the session may still be answering it.
func oneChat(ctx context.Context, c *client, n, questions int, first time.Time, t *chatTally) []exchange {
	var conv []exchange
	stop := func(err error, unasked int) []exchange {
		t.fail(fmt.Errorf("chat %d: %w", n, err))
		t.notAsked.Add(int64(unasked))
		return conv
	}
	var session struct{ ID string }
	if err := c.postJSON(ctx, "/api/v1/chat/sessions", map[string]string{"title": fmt.Sprintf("bench chat %d", n)}, &session, http.StatusCreated); err != nil {
		return stop(err, questions)
	}
	sctx, cancel := context.WithCancel(ctx)
	st, err := c.openChat(sctx, session.ID)
	if err != nil {
		cancel()
		return stop(err, questions)
	}
	defer func() { cancel(); st.wait() }()
	select {
	case <-time.After(time.Until(first)):
	case <-ctx.Done():
		return stop(ctx.Err(), questions)
	}
	for k := range questions {
		q := chatQuestions[(n+k)%len(chatQuestions)]
		sent := time.Now()
		var ids struct {
			MessageID string `json:"message_id"`
			AnswerID  string `json:"answer_id"`
		}
		if err := c.postJSON(ctx, "/api/v1/chat/sessions/"+session.ID+"/messages", map[string]string{"content": q}, &ids, http.StatusAccepted); err != nil {
			t.refused.Add(1)
			return stop(err, questions-k-1)
		}
		t.asked.Add(1)
		a, err := st.await(ctx, ids.AnswerID, chatAnswerTimeout)
		if err != nil {
			t.missing.Add(1)
			conv = append(conv, exchange{question: q})
			return stop(fmt.Errorf("answer %s: %w", ids.AnswerID, err), questions-k-1)
		}
		conv = append(conv, exchange{question: q, answer: a.final.Content, status: a.final.Status})
		if a.garbled() {
			t.garbled.Add(1)
			t.fail(fmt.Errorf("chat %d: answer %s: its deltas do not add up to its text", n, ids.AnswerID))
		}
		if a.failed {
			t.failed.Add(1)
			t.fail(fmt.Errorf("chat %d: answer %s ended as %s: %s (%s)", n, ids.AnswerID, a.final.Status, a.final.Reason, a.final.ReasonClass))
			continue
		}
		t.answered.Add(1)
		t.firstToken.Add(a.firstDelta.Sub(sent))
		t.answer.Add(a.end.Sub(sent))
		written := a.asked.Add(time.Duration(a.final.FirstTokenMS) * time.Millisecond)
		t.ask.Add(a.asked.Sub(sent))
		t.write.Add(written.Sub(a.asked))
		t.deliver.Add(a.firstDelta.Sub(written))
	}
	return conv
}

// chatStream is a session's event stream being read: what it has seen of
// each answer.
type chatStream struct {
	mu      sync.Mutex
	answers map[string]*seenAnswer
	ended   chan struct{} // an answer ended (capacity 1: a wake-up, not a count)
	done    chan struct{} // the stream ended
	err     error         // why, once done
}

// seenAnswer is one answer as the client received it.
type seenAnswer struct {
	asked           time.Time // the question's publication, as its event says
	firstDelta, end time.Time
	text            strings.Builder // the deltas, joined
	misplaced       bool            // a delta not at the end of the text so far
	final           streams.ChatMessage
	failed          bool // it ended by an error event
}

// garbled reports whether the deltas of an ended answer are not its text.
func (a *seenAnswer) garbled() bool {
	return a.misplaced || (!a.failed && a.text.String() != a.final.Content)
}

// openChat opens the event stream of a session and reads it until ctx
// ends; it returns once the stream is established.
func (c *client) openChat(ctx context.Context, session string) (*chatStream, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/chat/sessions/"+session+"/events", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("events of chat %s: %d", session, resp.StatusCode)
	}
	st := &chatStream{answers: map[string]*seenAnswer{}, ended: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(st.done)
		defer resp.Body.Close()
		err := readSSE(resp.Body, st.handle)
		if err == nil || ctx.Err() != nil {
			err = errors.New("the event stream ended")
		}
		st.mu.Lock()
		st.err = err
		st.mu.Unlock()
	}()
	return st, nil
}

// handle takes one event of the stream.
func (st *chatStream) handle(f sseFrame) bool {
	switch f.event {
	case "question":
		var q struct {
			CreatedAt time.Time `json:"created_at"`
			AnswerID  string    `json:"answer_id"`
		}
		if json.Unmarshal([]byte(f.data), &q) == nil {
			st.mu.Lock()
			st.answer(q.AnswerID).asked = q.CreatedAt
			st.mu.Unlock()
		}
	case "delta":
		var d struct {
			AnswerID string `json:"answer_id"`
			Offset   int    `json:"offset"`
			Text     string `json:"text"`
		}
		if json.Unmarshal([]byte(f.data), &d) != nil {
			return true
		}
		st.mu.Lock()
		a := st.answer(d.AnswerID)
		if a.firstDelta.IsZero() {
			a.firstDelta = f.at
		}
		a.misplaced = a.misplaced || d.Offset != a.text.Len()
		a.text.WriteString(d.Text)
		st.mu.Unlock()
	case "answer", "error":
		var m streams.ChatMessage
		if json.Unmarshal([]byte(f.data), &m) != nil {
			return true
		}
		st.mu.Lock()
		a := st.answer(m.ID)
		a.end, a.final, a.failed = f.at, m, f.event == "error"
		st.mu.Unlock()
		select {
		case st.ended <- struct{}{}:
		default:
		}
	case "deleted":
		return false
	}
	return true
}

func (st *chatStream) answer(id string) *seenAnswer {
	a := st.answers[id]
	if a == nil {
		a = &seenAnswer{}
		st.answers[id] = a
	}
	return a
}

// await waits for the end of answer id.
func (st *chatStream) await(ctx context.Context, id string, timeout time.Duration) (*seenAnswer, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		st.mu.Lock()
		a := st.answers[id]
		if a != nil && !a.end.IsZero() {
			st.mu.Unlock()
			return a, nil
		}
		st.mu.Unlock()
		select {
		case <-st.ended:
		case <-st.done:
			st.mu.Lock()
			defer st.mu.Unlock()
			if a := st.answers[id]; a != nil && !a.end.IsZero() {
				return a, nil
			}
			return nil, st.err
		case <-deadline.C:
			return nil, fmt.Errorf("no answer or error event within %s", timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// wait waits for the stream's reader to end (after its context).
func (st *chatStream) wait() { <-st.done }
