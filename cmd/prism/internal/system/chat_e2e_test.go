package system_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
)

// chatEvent is one event of a chat session's stream.
type chatEvent struct {
	id, event string
	data      json.RawMessage
	at        time.Time
}

// openChat opens a session's event stream; its events arrive on the
// channel until the stream ends or the test does.
func openChat(t *testing.T, api, session, lastEventID string) <-chan chatEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/chat/sessions/"+session+"/events", nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("chat stream: %d %s", resp.StatusCode, raw)
	}
	out := make(chan chatEvent, 1024)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		readSSE(resp.Body, func(id, event string, data []byte) {
			out <- chatEvent{id: id, event: event, data: data, at: time.Now()}
		})
	}()
	return out
}

// postJSON posts body and decodes the answer into v, returning the status.
func postJSON(t *testing.T, url string, body, v any) int {
	t.Helper()
	raw, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(got, v); err != nil {
			t.Fatalf("POST %s: %d %s", url, resp.StatusCode, got)
		}
	}
	return resp.StatusCode
}

type chatSession struct {
	ID         string                `json:"id"`
	DocumentID string                `json:"document_id"`
	Messages   []streams.ChatMessage `json:"messages"`
}

func newChat(t *testing.T, api, document string) string {
	t.Helper()
	var s chatSession
	if code := postJSON(t, api+"/api/v1/chat/sessions", map[string]string{"document_id": document}, &s); code != http.StatusCreated {
		t.Fatalf("create session: %d %+v", code, s)
	}
	return s.ID
}

type asked struct {
	MessageID string `json:"message_id"`
	AnswerID  string `json:"answer_id"`
}

func ask(t *testing.T, api, session, question string) asked {
	t.Helper()
	var a asked
	if code := postJSON(t, api+"/api/v1/chat/sessions/"+session+"/messages", map[string]string{"content": question}, &a); code != http.StatusAccepted {
		t.Fatalf("ask: %d %+v", code, a)
	}
	return a
}

type delta struct {
	AnswerID string `json:"answer_id"`
	Offset   int    `json:"offset"`
	Text     string `json:"text"`
}

// answerOf reads events until the answer ends, returning its deltas and
// its end ("answer" or "error").
func answerOf(t *testing.T, events <-chan chatEvent, answer string, within time.Duration) ([]delta, chatEvent, streams.ChatMessage) {
	t.Helper()
	var deltas []delta
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("chat stream ended before the answer")
			}
			switch ev.event {
			case "delta":
				var d delta
				if err := json.Unmarshal(ev.data, &d); err != nil {
					t.Fatal(err)
				}
				if d.AnswerID == answer {
					deltas = append(deltas, d)
				}
			case "answer", "error":
				var m streams.ChatMessage
				if err := json.Unmarshal(ev.data, &m); err != nil {
					t.Fatal(err)
				}
				if m.ID == answer {
					return deltas, ev, m
				}
			}
		case <-timeout:
			t.Fatalf("answer %s did not end within %s (%d deltas)", answer, within, len(deltas))
		}
	}
}

// joined checks that deltas follow each other without gap or overlap and
// returns their text.
func joined(t *testing.T, deltas []delta) string {
	t.Helper()
	var b strings.Builder
	for _, d := range deltas {
		if d.Offset != b.Len() {
			t.Fatalf("delta at offset %d after %d bytes: out of order, repeated or missing", d.Offset, b.Len())
		}
		b.WriteString(d.Text)
	}
	return b.String()
}

func storedSession(t *testing.T, api, session string) chatSession {
	t.Helper()
	var s chatSession
	if code := getJSON(t, api+"/api/v1/chat/sessions/"+session, &s); code != http.StatusOK {
		t.Fatalf("GET session: %d", code)
	}
	return s
}

// TestChatThroughEveryRole asks about an analyzed document through the
// whole system (API, NATS, analyzer, simulator, persist): the answer
// streams in delta by delta, in order, equals the message persist stores,
// cites the document, and the conversation survives a restart of the
// system (the API with it), the follow-up carrying the history.
func TestChatThroughEveryRole(t *testing.T) {
	dir, dsn := t.TempDir(), testenv.Postgres(t)
	dev := startDev(t, dir, dsn)
	api := dev.APIURL
	doc := upload(t, api, "supply.txt", contract)
	waitStored(t, api, doc)

	session := newChat(t, api, doc)
	events := openChat(t, api, session, "")
	q := ask(t, api, session, "What does the liability clause mean for us?")
	deltas, end, msg := answerOf(t, events, q.AnswerID, 30*time.Second)
	text := joined(t, deltas)
	if end.event != "answer" || msg.Status != streams.MessageComplete || len(deltas) < 2 || text != msg.Content {
		t.Fatalf("answer: %s %s, %d deltas making %q; final %q", end.event, msg.Status, len(deltas), text, msg.Content)
	}
	if !strings.Contains(msg.Content, "unlimited liability") || len(msg.Citations) == 0 || msg.Citations[0].StartLine < 1 || msg.Model == "" || msg.OutputTokens == 0 {
		t.Fatalf("the answer does not cite the document: %+v", msg)
	}
	testenv.Eventually(t, 10*time.Second, "the answer persisted as streamed", func() bool {
		var s chatSession
		getJSON(t, api+"/api/v1/chat/sessions/"+session, &s)
		return len(s.Messages) == 2 && s.Messages[1].Content == text && s.Messages[1].Status == streams.MessageComplete
	})

	dev.stop()
	dev = startDev(t, dir, dsn)
	api = dev.APIURL
	before := storedSession(t, api, session)
	if len(before.Messages) != 2 || before.Messages[1].Content != text || before.Messages[0].Content != "What does the liability clause mean for us?" {
		t.Fatalf("after a restart the session holds %+v", before.Messages)
	}
	events = openChat(t, api, session, end.id)
	q2 := ask(t, api, session, "And what should we negotiate first?")
	_, end2, msg2 := answerOf(t, events, q2.AnswerID, 30*time.Second)
	if end2.event != "answer" || msg2.Status != streams.MessageComplete {
		t.Fatalf("follow-up: %s %+v", end2.event, msg2)
	}
	calls := dev.Sim.Requests()
	last := calls[len(calls)-1]
	if last.Messages != 3 || !strings.Contains(last.System, "risk-advice assistant") {
		t.Fatalf("the follow-up's model call had %d messages (want the earlier turn and this one): %+v", last.Messages, last)
	}
}

// TestChatAnalyzerKilledMidAnswer kills the analyzer process that is
// writing an answer: the client's stream gets an error event for that
// answer within 10 s, with the text written so far kept, and the answer
// can be regenerated once an analyzer is back.
func TestChatAnalyzerKilledMidAnswer(t *testing.T) {
	bin := testenv.PrismBinary(t)
	// A realistic simulator pace (times three), so that an answer takes
	// seconds to write.
	dev := startDev(t, t.TempDir(), testenv.Postgres(t), map[string]string{
		"PRISM_DEV_ROLES": "api,persist,ingest,extractor,notifier", "PRISM_DEV_NATS_PORT": "0", "BEDROCKSIM_SPEED": "3",
	})
	env := map[string]string{"NATS_URL": dev.NATSURL, "LOG_LEVEL": "info", "LOG_FORMAT": "json"}
	for k, v := range dev.RoleEnv {
		env[k] = v
	}
	startAnalyzer := func() *system.Process {
		p, err := system.StartProcess(bin, "analyzer", env)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Kill() })
		testenv.Eventually(t, 60*time.Second, "the analyzer's consumers", func() bool {
			return strings.Count(p.Output(), "consumer started") >= 2
		})
		return p
	}
	analyzer := startAnalyzer()
	api := dev.APIURL
	var s chatSession
	if code := postJSON(t, api+"/api/v1/chat/sessions", map[string]string{"title": "free"}, &s); code != http.StatusCreated {
		t.Fatalf("create session: %d", code)
	}
	events := openChat(t, api, s.ID, "")
	q := ask(t, api, s.ID, "How should a supplier contract limit liability and indemnity?")
	var first chatEvent
	for first.event != "delta" {
		select {
		case first = <-events:
		case <-time.After(30 * time.Second):
			t.Fatal("no delta within 30 s")
		}
	}
	analyzer.Kill()
	killed := time.Now()
	_, end, msg := answerOf(t, events, q.AnswerID, 10*time.Second)
	if end.event != "error" || msg.Status != streams.MessageIncomplete || msg.Content == "" || msg.ReasonClass != streams.ClassAnswerInterrupted {
		t.Fatalf("after the kill: %s %+v", end.event, msg)
	}
	t.Logf("error event %s after the kill", end.at.Sub(killed).Round(time.Millisecond))

	startAnalyzer()
	var again asked
	if code := postJSON(t, api+"/api/v1/chat/sessions/"+s.ID+"/messages/"+q.AnswerID+"/regenerate", nil, &again); code != http.StatusAccepted {
		t.Fatalf("regenerate: %d", code)
	}
	_, end, msg = answerOf(t, events, again.AnswerID, 60*time.Second)
	if end.event != "answer" || msg.Status != streams.MessageComplete {
		t.Fatalf("regenerated: %s %+v", end.event, msg)
	}
}
