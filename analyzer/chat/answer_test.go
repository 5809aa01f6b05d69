package chat_test

import (
	"context"
	"encoding/json"
	"github.com/aiprism/prism/platform/jsbind"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/chat"
	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
)

// fixture is the answerer on real parts: embedded NATS with the streams,
// the S3 test server, the Bedrock simulator through the real client and
// router, and the limits bucket with a daily budget.
type fixture struct {
	js       jetstream.JetStream
	store    *blob.Store
	s3       *testenv.S3Watch
	sim      *bedrocksim.Server
	simURL   string
	router   *router.Router
	pub      *streams.Publisher
	budget   *quota.Budget
	answerer *chat.Answerer
	cfg      chat.Config
	logs     *testenv.Logs
	reg      *prometheus.Registry
}

// newFixture's simulator is fast, but streams its answers in several
// pieces over a few hundred ms.
func newFixture(t *testing.T) *fixture { return newFixtureAt(t, 0.05) }

// newFixtureAt runs the simulator at speed (1: realistic latencies).
func newFixtureAt(t *testing.T, speed float64) *fixture {
	t.Helper()
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	s3 := testenv.S3Watched(t)
	store := s3.Store(t)
	sim, err := bedrocksim.New(bedrocksim.Config{Speed: speed, AccessKey: "AKTEST", SecretKey: "secret", Seed: 1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	client, err := bedrock.NewClient(ctx, bedrock.Config{Region: "us-east-1", Endpoint: hs.URL, AccessKeyID: "AKTEST", SecretAccessKey: "secret", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := jsbind.CreateKeyValues(ctx, js, router.BucketConfig("router", 1), quota.BucketConfig("", 1)); err != nil {
		t.Fatal(err)
	}
	if err := jsbind.CreateStreams(ctx, js, quota.UsageStreamConfig(1)); err != nil {
		t.Fatal(err)
	}
	shared, err := router.OpenShared(ctx, js, "router", nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := router.New(router.DefaultChain(), shared, client, router.Options{MaxWait: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	limits, err := quota.Open(ctx, js, quota.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{js: js, store: store, s3: s3, sim: sim, simURL: hs.URL, router: r, pub: streams.NewPublisher(js, "/test"),
		budget: limits.Budget(1_000_000), logs: &testenv.Logs{}, reg: prometheus.NewRegistry(),
		cfg: chat.Config{Passages: 5, HistoryTokens: 8000, MaxOutputTokens: 1024, MaxChars: 1 << 20, Heartbeat: 50 * time.Millisecond}}
	f.answerer = chat.New(js, store, r, f.pub, f.cfg, chat.WithBudget(f.budget), chat.WithMetrics(chat.NewMetrics(f.reg)))
	return f
}

// metric is the value of a counter, or the sample count of a histogram,
// with the labels given.
func (f *fixture) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == labels[i] && l.GetValue() == labels[i+1] }) {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// run consumes chat.asked with the answerer until the test ends.
func (f *fixture) run(t *testing.T) {
	streamstest.Running(t, f.js, streams.ChatConsumer, f.answerer.Handle, f.pub, f.logs)
}

// document stores a corpus document's real extraction as owner's
// document doc (uploaded, extracted events and the text object) and has
// the real analyzer assess it on the simulator; it returns the text.
func (f *fixture) document(t *testing.T, owner, doc, file string) (text, format string) {
	t.Helper()
	ctx := context.Background()
	text, format = extracted(t, newExtractor(t), file)
	m := streams.Meta{Owner: owner, DocumentID: doc, Run: 1, CorrelationID: "corr-" + doc}
	if _, err := f.pub.Emit(ctx, m, streams.Uploaded, "", streams.UploadedData{Filename: file[strings.LastIndex(file, "/")+1:], UploadedBy: owner, Via: "http"}); err != nil {
		t.Fatal(err)
	}
	put, err := f.store.Put(ctx, blob.TextKey(owner, doc, "run-1"), strings.NewReader(text), int64(len(text)), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := f.pub.Emit(ctx, m, streams.Extracted, "", streams.ExtractedData{Text: streams.ObjectRef{Key: put.Key, Size: put.Size, SHA256: put.SHA256}, Format: format})
	if err != nil {
		t.Fatal(err)
	}
	stage := analyzer.NewStage(f.store, f.router, nil, f.pub, analyzer.StageConfig{MaxOutputTokens: 2048, ChunkBytes: 400_000, MaxChars: 1 << 20}, nil)
	if err := stage.Handle(ctx, ex); err != nil {
		t.Fatalf("analyze %s: %v", file, err)
	}
	return text, format
}

// analyzed is the payload of the analyzed event of owner's document.
func (f *fixture) analyzed(t *testing.T, owner, doc string) streams.AnalyzedData {
	t.Helper()
	ev, err := streams.NewLog(f.js).Last(context.Background(), streams.DocSubject(owner, doc, streams.Analyzed))
	if err != nil || ev == nil {
		t.Fatalf("analyzed event of %s: %v", doc, err)
	}
	var d streams.AnalyzedData
	if err := ev.Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// session publishes a session's created event.
func (f *fixture) session(t *testing.T, owner, session, doc string) streams.ChatMeta {
	t.Helper()
	m := streams.ChatMeta{Owner: owner, Session: session, CorrelationID: "corr-" + session}
	f.publish(t, m, streams.ChatCreated, "", streams.ChatCreatedData{Title: "about " + doc, DocumentID: doc, CreatedBy: owner})
	return m
}

// ask publishes a question and returns its event.
func (f *fixture) ask(t *testing.T, m streams.ChatMeta, d streams.ChatAskedData) *streams.Event {
	t.Helper()
	return f.publish(t, m, streams.ChatAsked, d.AnswerID, d)
}

func (f *fixture) publish(t *testing.T, m streams.ChatMeta, typ streams.EventType, key string, data any) *streams.Event {
	t.Helper()
	ev, err := streams.NewChatEvent("/test", m, typ, key, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.pub.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// waitEnd waits for the stored end of an answer.
func (f *fixture) waitEnd(t *testing.T, m streams.ChatMeta, answer string) (streams.EventType, streams.ChatAnswerData) {
	t.Helper()
	var (
		kind streams.EventType
		d    streams.ChatAnswerData
	)
	log := streams.NewChatLog(f.js)
	testenv.Eventually(t, 15*time.Second, "the end of answer "+answer, func() bool {
		for _, k := range []streams.EventType{streams.ChatAnswered, streams.ChatFailed} {
			ev, err := log.Last(context.Background(), streams.ChatSubject(m.Owner, m.Session, k))
			if err == nil && ev != nil && ev.Decode(&d) == nil && d.AnswerID == answer {
				kind = k
				return true
			}
		}
		return false
	})
	return kind, d
}

// requests is how many model calls the simulator has logged.
func (f *fixture) requests() int64 { return int64(len(f.sim.Requests())) }

// lastChat is the simulator's log entry of the last streamed model call.
func (f *fixture) lastChat(t *testing.T) bedrocksim.LoggedRequest {
	t.Helper()
	reqs := f.sim.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Operation == "converse-stream" {
			return reqs[i]
		}
	}
	t.Fatal("the simulator logged no streamed call")
	return bedrocksim.LoggedRequest{}
}

// liveLog records the live messages of one session.
type liveLog struct {
	mu   sync.Mutex
	msgs []streams.ChatLive
}

func (f *fixture) watchLive(t *testing.T, m streams.ChatMeta) *liveLog {
	t.Helper()
	l := &liveLog{}
	sub, err := f.js.Conn().Subscribe(streams.ChatLiveSubject(m.Owner, m.Session), func(msg *nats.Msg) {
		var c streams.ChatLive
		if err := json.Unmarshal(msg.Data, &c); err != nil {
			t.Errorf("live message %q: %v", msg.Data, err)
			return
		}
		l.mu.Lock()
		l.msgs = append(l.msgs, c)
		l.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.js.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return l
}

func (l *liveLog) all() []streams.ChatLive {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]streams.ChatLive(nil), l.msgs...)
}

// text joins an answer's deltas by offset, checking that they follow on
// from each other with no gap or overlap.
func (l *liveLog) text(t *testing.T, answer string) (text string, deltas int) {
	t.Helper()
	var ds []streams.ChatLive
	for _, c := range l.all() {
		if c.Kind == streams.LiveDelta && c.AnswerID == answer {
			ds = append(ds, c)
		}
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Offset < ds[j].Offset })
	var b strings.Builder
	for _, d := range ds {
		if d.Offset != b.Len() {
			t.Fatalf("delta at offset %d after %d bytes", d.Offset, b.Len())
		}
		b.WriteString(d.Text)
	}
	return b.String(), len(ds)
}

func (l *liveLog) count(kind string) int {
	n := 0
	for _, c := range l.all() {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

// A question about a bound document is answered live, delta by delta,
// and the deltas make up exactly the stored answer; the answer cites
// passages that were retrieved for the question, with their pages and
// lines; started comes first, heartbeats while it is written.
func TestBoundSessionAnswerStreamsAndCitesRetrievedPassages(t *testing.T) {
	f := newFixture(t)
	text, format := f.document(t, "alice", "doc-1", "vendor-contract/vendor-contract.libreoffice.pdf")
	f.run(t)
	m := f.session(t, "alice", "s-1", "doc-1")
	live := f.watchLive(t, m)
	question := "Must we indemnify the supplier even for its own negligence?"
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: question, DocumentID: "doc-1"})

	kind, d := f.waitEnd(t, m, "a-1")
	if kind != streams.ChatAnswered || d.Incomplete || d.Content == "" {
		t.Fatalf("ended %s %+v, want a complete answer", kind, d)
	}
	got, deltas := live.text(t, "a-1")
	if got != d.Content || deltas < 2 {
		t.Fatalf("%d deltas make up %q,\nthe stored answer is %q", deltas, got, d.Content)
	}
	if msgs := live.all(); msgs[0].Kind != streams.LiveStarted || msgs[0].AnswerID != "a-1" || msgs[0].Model == "" {
		t.Fatalf("first live message %+v, want started with the model", msgs[0])
	}
	retrieved := chat.Retrieve(text, format, question, f.cfg.Passages)
	if len(d.Citations) == 0 {
		t.Fatalf("no citations in %q", d.Content)
	}
	for _, c := range d.Citations {
		if c.Ref < 1 || c.Ref > len(retrieved) || c != retrieved[c.Ref-1].Citation || c.Page == 0 || c.StartLine == 0 {
			t.Fatalf("citation %+v is not passage [%d] as retrieved", c, c.Ref)
		}
		if !strings.Contains(d.Content, "["+strconv.Itoa(c.Ref)+"]") {
			t.Fatalf("citation [%d] is not used in the answer %q", c.Ref, d.Content)
		}
	}
	if d.Model == "" || d.InputTokens == 0 || d.OutputTokens == 0 || d.CostUSD <= 0 || d.LatencyMS <= 0 ||
		d.FirstTokenMS <= 0 || d.FirstTokenMS > d.LatencyMS || len(d.Attempts) != 1 || d.MessageID != "q-1" {
		t.Fatalf("answer record %+v", d)
	}
	if used, err := f.budget.Used(context.Background(), "alice"); err != nil || used < int64(d.InputTokens+d.OutputTokens) {
		t.Fatalf("alice used %d (%v) of her budget, want at least the answer's %d tokens", used, err, d.InputTokens+d.OutputTokens)
	}

	// The prompt, as the simulator received it: the chat system prompt,
	// the document's validated assessment and the retrieved passages,
	// numbered as cited, framed, then the question.
	sent := f.lastChat(t)
	ad := f.analyzed(t, "alice", "doc-1")
	if sent.System != prompt.ChatSystem || sent.Truncated || sent.Messages != 1 ||
		!strings.Contains(sent.User, "<<<ASSESSMENT ") || !strings.Contains(sent.User, string(ad.Assessment)) ||
		!strings.Contains(sent.User, "vendor-contract.libreoffice.pdf") || !strings.HasSuffix(sent.User, "Question: "+question) {
		t.Fatalf("the prompt lacks the assessment or the question:\n%s", sent.User)
	}
	for _, r := range retrieved {
		if block := "[" + strconv.Itoa(r.Prompt.Ref) + "] " + r.Prompt.Where + "\n" + r.Prompt.Text; !strings.Contains(sent.User, block) {
			t.Fatalf("the prompt lacks passage %q", block)
		}
	}

	// A follow-up carries the first turn as history.
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-2", AnswerID: "a-2", Content: "Which clause caps the liability?", DocumentID: "doc-1"})
	if kind, _ := f.waitEnd(t, m, "a-2"); kind != streams.ChatAnswered {
		t.Fatalf("follow-up ended %s", kind)
	}
	if sent := f.lastChat(t); sent.Messages != 3 || !strings.HasSuffix(sent.User, "Question: Which clause caps the liability?") {
		t.Fatalf("follow-up sent %d messages, last %q; want the first turn before it", sent.Messages, sent.User)
	}
	if n, ft := f.metric(t, "prism_chat_answers_total", "outcome", "complete"), f.metric(t, "prism_chat_first_token_seconds"); n != 2 || ft != 2 {
		t.Fatalf("metrics: %v complete answers, %v first tokens; want 2 and 2", n, ft)
	}
	if !f.logs.Has(`"session_id":"s-1"`, `"owner":"alice"`, `"correlation_id":"corr-s-1"`, `"answer_id":"a-2"`, "answer ended") {
		t.Fatalf("no log line of the answer's end with its session, owner, correlation and answer ids:\n%s", f.logs)
	}
}

// An answer that reaches its output budget is kept as written, and
// marked incomplete.
func TestAnswerCutAtTheOutputBudgetIsMarkedIncomplete(t *testing.T) {
	f := newFixture(t)
	f.cfg.MaxOutputTokens = 20
	f.answerer = chat.New(f.js, f.store, f.router, f.pub, f.cfg)
	f.run(t)
	m := f.session(t, "alice", "s-1", "")
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "How should we handle the liability cap in supplier contracts?"})
	kind, d := f.waitEnd(t, m, "a-1")
	if kind != streams.ChatAnswered || !d.Incomplete || d.Content == "" || d.ReasonClass != streams.ClassIncompleteOutput || d.OutputTokens > 20 {
		t.Fatalf("ended %s %+v, want answered, incomplete at 20 output tokens", kind, d)
	}
}

// In a free session, the documents the question names are given with
// their assessments; when it names none, the recent ones by name.
func TestFreeSessionReadsTheDocumentsTheQuestionNames(t *testing.T) {
	f := newFixture(t)
	f.document(t, "alice", "doc-1", "vendor-contract/vendor-contract.libreoffice.pdf")
	ad := f.analyzed(t, "alice", "doc-1")
	f.run(t)
	m := f.session(t, "alice", "s-1", "")
	recent := []streams.ChatDocRef{{ID: "doc-1", Filename: "vendor-contract.libreoffice.pdf"}, {ID: "doc-2", Filename: "lease.docx"}}
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "What is wrong with the VENDOR-CONTRACT.libreoffice draft?", Recent: recent})
	if kind, _ := f.waitEnd(t, m, "a-1"); kind != streams.ChatAnswered {
		t.Fatalf("ended %s", kind)
	}
	line := "vendor-contract.libreoffice.pdf: " + ad.Level + ", " + strconv.Itoa(ad.Score) + "/100: "
	if sent := f.lastChat(t).User; !strings.Contains(sent, "<<<DOCUMENTS ") || !strings.Contains(sent, line) || strings.Contains(sent, "lease.docx") {
		t.Fatalf("the prompt does not give the named document's assessment (%q) alone:\n%s", line, sent)
	}

	f.ask(t, m, streams.ChatAskedData{MessageID: "q-2", AnswerID: "a-2", Content: "Which of my documents is the riskiest?", Recent: recent})
	if kind, _ := f.waitEnd(t, m, "a-2"); kind != streams.ChatAnswered {
		t.Fatalf("ended %s", kind)
	}
	if sent := f.lastChat(t).User; !strings.Contains(sent, "\nvendor-contract.libreoffice.pdf\nlease.docx\n") {
		t.Fatalf("the prompt does not list the recent documents by name:\n%s", sent)
	}
}

// An owner whose daily budget is spent gets a failed answer saying so,
// in our words, and no model is called.
func TestSpentBudgetFailsTheAnswerWithoutAModelCall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	limits, err := quota.Open(ctx, f.js, quota.Config{})
	if err != nil {
		t.Fatal(err)
	}
	budget := limits.Budget(100)
	if err := budget.Spend(ctx, "alice", "earlier-doc", 1, 1, 150); err != nil {
		t.Fatal(err)
	}
	f.answerer = chat.New(f.js, f.store, f.router, f.pub, f.cfg, chat.WithBudget(budget))
	f.run(t)
	m := f.session(t, "alice", "s-1", "")
	live := f.watchLive(t, m)
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "What should we negotiate first?"})

	kind, d := f.waitEnd(t, m, "a-1")
	if kind != streams.ChatFailed || d.ReasonClass != streams.ClassBudgetSpent || d.Reason != streams.ChatClassReason(streams.ClassBudgetSpent) ||
		d.Content != "" || d.Incomplete || d.Citations == nil {
		t.Fatalf("ended %s %+v, want failed %s with no text", kind, d, streams.ClassBudgetSpent)
	}
	if n := f.requests(); n != 0 {
		t.Fatalf("%d model calls for an owner whose budget is spent", n)
	}
	if live.count(streams.LiveStarted) != 1 || live.count(streams.LiveDelta) != 0 {
		t.Fatalf("live messages %+v, want started and no delta", live.all())
	}
}

// A stream that breaks after its first delta is not retried on another
// model: the answer ends failed with the text written so far, marked
// incomplete, and that text is what the deltas carried.
func TestAnswerInterruptedMidStreamKeepsThePartialText(t *testing.T) {
	t.Run("exception", func(t *testing.T) { testInterrupted(t, bedrocksim.Faults{MidStream: 1}) })
	t.Run("connection-cut", func(t *testing.T) { testInterrupted(t, bedrocksim.Faults{MidStream: 1, MidStreamCut: true}) })
}

func testInterrupted(t *testing.T, faults bedrocksim.Faults) {
	f := newFixture(t)
	if err := f.sim.SetFaults("*", faults); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	m := f.session(t, "alice", "s-1", "")
	live := f.watchLive(t, m)
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "How should we handle the liability cap in supplier contracts?"})

	kind, d := f.waitEnd(t, m, "a-1")
	if kind != streams.ChatFailed || d.ReasonClass != streams.ClassAnswerInterrupted || !d.Incomplete || d.Content == "" ||
		d.Reason != streams.ChatClassReason(streams.ClassAnswerInterrupted) {
		t.Fatalf("ended %s %+v, want failed %s with the partial text", kind, d, streams.ClassAnswerInterrupted)
	}
	if got, _ := live.text(t, "a-1"); got != d.Content {
		t.Fatalf("deltas make up %q, the stored partial answer is %q", got, d.Content)
	}
	if n := f.requests(); n != 1 {
		t.Fatalf("%d model calls, want 1: no fallback after the first delta", n)
	}
	if n := f.metric(t, "prism_chat_answers_total", "outcome", streams.ClassAnswerInterrupted); n != 1 {
		t.Fatalf("%v interrupted answers counted, want 1", n)
	}
}

// When every model is busy, a chat does not wait minutes for capacity as
// a document does: it fails now, with the reason.
func TestBusyModelsFailTheAnswerAtOnce(t *testing.T) {
	f := newFixture(t)
	if err := f.sim.SetFaults("*", bedrocksim.Faults{Throttle: 1}); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	m := f.session(t, "alice", "s-1", "")
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "What is a DPA?"})
	kind, d := f.waitEnd(t, m, "a-1")
	if kind != streams.ChatFailed || d.ReasonClass != streams.ClassModelsBusy || d.Content != "" || len(d.Attempts) == 0 {
		t.Fatalf("ended %s %+v, want failed %s with the attempts", kind, d, streams.ClassModelsBusy)
	}
}

// lastSeq is the CHAT stream's last sequence.
func (f *fixture) lastSeq(t *testing.T) uint64 {
	t.Helper()
	st, err := f.js.Stream(context.Background(), streams.ChatStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// A question delivered again after its answer ended (an ack lost) changes
// nothing: no model call, no live message, no stored event. Nor does a
// question whose answer an API's watchdog ended before any analyzer
// took it.
func TestRedeliveredQuestionOfAnEndedAnswerDoesNothing(t *testing.T) {
	ctx := zerolog.New(zerolog.NewTestWriter(t)).WithContext(context.Background())
	f := newFixture(t)
	m := f.session(t, "alice", "s-1", "")
	asked := f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "What is a DPA?"})
	if err := f.answerer.Handle(streams.WithDelivery(ctx, 1), asked); err != nil {
		t.Fatal(err)
	}
	if kind, _ := f.waitEnd(t, m, "a-1"); kind != streams.ChatAnswered {
		t.Fatalf("first delivery ended %s", kind)
	}
	calls, seq := f.requests(), f.lastSeq(t)
	live := f.watchLive(t, m)
	if err := f.answerer.Handle(streams.WithDelivery(ctx, 2), asked); err != nil {
		t.Fatal(err)
	}

	// The watchdog's end came first.
	watched := f.ask(t, m, streams.ChatAskedData{MessageID: "q-2", AnswerID: "a-2", Content: "And a DPIA?"})
	f.publish(t, m, streams.ChatFailed, "a-2", streams.ChatAnswerData{AnswerID: "a-2", MessageID: "q-2",
		ReasonClass: streams.ClassAnswerInterrupted, Reason: streams.ChatClassReason(streams.ClassAnswerInterrupted), Citations: []streams.Citation{}})
	seq += 2
	if err := f.answerer.Handle(streams.WithDelivery(ctx, 1), watched); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * f.cfg.Heartbeat) // a heartbeat would have been sent by now
	if n := f.requests() - calls; n != 0 {
		t.Fatalf("%d model calls for questions whose answers ended", n)
	}
	if got := f.lastSeq(t); got != seq {
		t.Fatalf("the stream went from %d to %d: something was stored", seq, got)
	}
	if msgs := live.all(); len(msgs) != 0 {
		t.Fatalf("live messages %+v for answers that ended", msgs)
	}
}

// While an answer is written, a sync request gets the text so far as one
// delta from offset 0. When an API's watchdog has ended the answer
// meanwhile, the answerer's own end is dropped as a duplicate: the
// watchdog's is the only one stored.
func TestSyncWhileWritingAndAnEndThatCameFirst(t *testing.T) {
	ctx := zerolog.New(zerolog.NewTestWriter(t)).WithContext(context.Background())
	f := newFixtureAt(t, 0.5)
	m := f.session(t, "alice", "s-1", "")
	live := f.watchLive(t, m)
	asked := f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "How do we prepare for a supervisory audit of outsourcing?"})
	done := make(chan error, 1)
	go func() { done <- f.answerer.Handle(streams.WithDelivery(ctx, 1), asked) }()

	testenv.Eventually(t, 10*time.Second, "the first delta", func() bool { return live.count(streams.LiveDelta) > 0 })
	reply, err := f.js.Conn().Request(streams.ChatSyncSubject(m.Owner, m.Session, "a-1"), nil, 2*time.Second)
	if err != nil {
		t.Fatalf("sync request: %v", err)
	}
	var sync streams.ChatLive
	if err := json.Unmarshal(reply.Data, &sync); err != nil {
		t.Fatal(err)
	}
	if sync.Kind != streams.LiveDelta || sync.AnswerID != "a-1" || sync.Offset != 0 || sync.Text == "" {
		t.Fatalf("sync reply %+v, want the text so far from offset 0", sync)
	}
	watchdog := f.publish(t, m, streams.ChatFailed, "a-1", streams.ChatAnswerData{AnswerID: "a-1", MessageID: "q-1",
		ReasonClass: streams.ClassAnswerInterrupted, Reason: streams.ChatClassReason(streams.ClassAnswerInterrupted), Citations: []streams.Citation{}})
	seq := f.lastSeq(t)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := f.lastSeq(t); got != seq {
		t.Fatalf("the answerer stored a second end (stream %d -> %d)", seq, got)
	}
	text, _ := live.text(t, "a-1")
	if !strings.HasPrefix(text, sync.Text) || len(text) <= len(sync.Text) {
		t.Fatalf("sync had %q; the whole text written is %q", sync.Text, text)
	}
	kind, d := f.waitEnd(t, m, "a-1")
	if kind != streams.ChatFailed || d.Content != "" || watchdog.Seq != seq {
		t.Fatalf("the end is %s %+v, want the watchdog's", kind, d)
	}
	if live.count(streams.LiveHeartbeat) == 0 {
		t.Fatal("no heartbeat while the answer was written")
	}
}

// Trouble on our side (the store unavailable) is retried by the runner;
// at the consumer's last delivery the answer ends failed with the reason
// instead of being dropped silently, and no model was called for it.
func TestStoreTroubleIsRetriedThenTheAnswerGivesUp(t *testing.T) {
	f := newFixture(t)
	f.document(t, "alice", "doc-1", "vendor-contract/vendor-contract.libreoffice.pdf")
	calls := f.requests()
	key := blob.TextKey("alice", "doc-1", "run-1")
	f.s3.Fail(key, testenv.S3Error{Status: 503, Code: "ServiceUnavailable", Message: "down for the test"})
	f.run(t)
	m := f.session(t, "alice", "s-1", "doc-1")
	f.ask(t, m, streams.ChatAskedData{MessageID: "q-1", AnswerID: "a-1", Content: "Who carries the liability?", DocumentID: "doc-1"})
	kind, d := f.waitEnd(t, m, "a-1")
	if kind != streams.ChatFailed || d.ReasonClass != streams.ClassGaveUp || d.Reason != streams.ChatClassReason(streams.ClassGaveUp) || d.Content != "" {
		t.Fatalf("ended %s %+v, want failed %s", kind, d, streams.ClassGaveUp)
	}
	if n := f.s3.Count("GET", key); n < streams.ChatConsumer.MaxDeliver {
		t.Fatalf("the text was read %d times, want a read per delivery (%d)", n, streams.ChatConsumer.MaxDeliver)
	}
	if n := f.requests() - calls; n != 0 {
		t.Fatalf("%d model calls without the document's passages", n)
	}
}
