package chat

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Router is the model router as the answerer uses it (*router.Router):
// a streamed call that falls back before the first delta only.
type Router interface {
	ConverseStream(ctx context.Context, req router.Request, onText func(string) error) (*router.Result, error)
	Chain() router.Chain
}

// Config bounds what one answer may use (ANALYZER_CHAT_*; see
// analyzer.ConfigFromEnv).
type Config struct {
	Passages        int // passages retrieved for a question about a document
	HistoryTokens   int // the history budget before the window's bound (see History)
	MaxOutputTokens int // per answer
	MaxChars        int // longest extracted text read
	// Heartbeat is how often a live heartbeat is sent while an answer is
	// written; default 1 s.
	Heartbeat time.Duration
}

// Answerer answers chat.asked events (streams.ChatConsumer).
type Answerer struct {
	js       jetstream.JetStream
	chats    *streams.Log
	docs     *streams.Log
	objects  Objects
	router   Router
	pub      *streams.Publisher
	cfg      Config
	budget   *quota.Budget
	metrics  *Metrics
	consumer streams.Consumer
}

// Option configures an Answerer.
type Option func(*Answerer)

// WithBudget holds each owner's answers to the daily model-token budget
// the document analyzer uses: checked before a model is called, and
// every call's tokens counted after, keyed by the answer's id.
func WithBudget(b *quota.Budget) Option { return func(a *Answerer) { a.budget = b } }

// WithMetrics records answers in m.
func WithMetrics(m *Metrics) Option { return func(a *Answerer) { a.metrics = m } }

// New returns the answerer: it reads sessions and documents from js,
// texts from objects, calls r and publishes the ends of answers with pub.
func New(js jetstream.JetStream, objects Objects, r Router, pub *streams.Publisher, cfg Config, opts ...Option) *Answerer {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	a := &Answerer{js: js, chats: streams.NewChatLog(js), docs: streams.NewLog(js), objects: objects, router: r, pub: pub, cfg: cfg,
		consumer: streams.ChatConsumer}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Metrics are the answerer's Prometheus metrics.
type Metrics struct {
	answers    *prometheus.CounterVec
	firstToken prometheus.Histogram
}

// NewMetrics registers the answerer's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return &Metrics{
		answers: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_chat_answers_total",
			Help: "Chat answers ended by this analyzer, by outcome (complete, or the failure class).",
		}, []string{"outcome"})),
		firstToken: obs.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "prism_chat_first_token_seconds",
			Help:    "Time from a question's publication to the first piece of its answer.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		})),
	}
}

func (m *Metrics) ended(outcome string, firstToken time.Duration) {
	if m == nil {
		return
	}
	m.answers.WithLabelValues(outcome).Inc()
	if firstToken > 0 {
		m.firstToken.Observe(firstToken.Seconds())
	}
}

// Handle answers the question of one chat.asked event. An answer that has
// ended already (a redelivery; an API that gave up on it), or whose
// session is gone, is left alone. Otherwise the answer is written live
// and ended by exactly one stored event, answered or failed; only
// trouble on our side (NATS, the store) returns an error, and the runner
// tries again.
func (a *Answerer) Handle(ctx context.Context, ev *streams.Event) error {
	var d streams.ChatAskedData
	if err := ev.Decode(&d); err != nil {
		return streams.Permanent(streams.ClassBadEvent, err)
	}
	if err := streams.ValidToken(d.AnswerID); err != nil {
		return streams.Permanent(streams.ClassBadEvent, fmt.Errorf("answer id: %w", err))
	}
	log := zerolog.Ctx(ctx).With().Str("answer_id", d.AnswerID).Logger()
	ctx = log.WithContext(ctx)
	m := streams.ChatMetaOf(ev)
	// The owner's budget is read while the session is folded: two reads,
	// both before the model is called, neither waiting for the other.
	budget := make(chan error, 1)
	go func() { budget <- a.checkBudget(ctx, ev.Owner) }()
	tr, err := a.transcript(ctx, m)
	spent := <-budget
	if err != nil {
		return err
	}
	if !answering(tr, d.AnswerID) {
		log.Debug().Bool("deleted", tr.Deleted).Msg("nothing to answer: the answer has ended or the session is gone")
		return nil
	}
	if d.DocumentID == "" {
		d.DocumentID = tr.Created.DocumentID // an asker that left it out
	}
	lv, err := startLive(a.js.Conn(), m.Owner, m.Session, d.AnswerID, a.expected(), ev.Time, a.cfg.Heartbeat, log)
	if err != nil {
		return err
	}
	defer lv.close()
	end, err := a.answer(ctx, ev, d, tr, lv, spent)
	if err != nil {
		if !a.lastChance(ctx, ev) {
			return err
		}
		// The runner gives up after this delivery and terminates the
		// question silently: the user hears why from us instead.
		log.Error().Err(err).Msg("giving up on the answer")
		end = failed(streams.ClassGaveUp, lv)
	}
	return a.end(ctx, m, d, ev.Time, end, lv)
}

// transcript folds the session from its events.
func (a *Answerer) transcript(ctx context.Context, m streams.ChatMeta) (*streams.Transcript, error) {
	var tr streams.Transcript
	err := a.chats.Replay(ctx, streams.ChatFilter(m.Owner, m.Session), 0, ^uint64(0), func(ev *streams.Event) (bool, error) {
		return false, tr.Apply(ev)
	})
	if err != nil {
		return nil, fmt.Errorf("read the session: %w", err)
	}
	return &tr, nil
}

// answering reports whether answer is still to be written in tr.
func answering(tr *streams.Transcript, answer string) bool {
	if tr.Deleted {
		return false
	}
	for _, msg := range tr.Messages {
		if msg.ID == answer {
			return msg.Status == streams.MessageAnswering
		}
	}
	return false // superseded by a regeneration
}

// expected is the model an answer is expected to come from: the first
// of the chain, as the started message tells.
func (a *Answerer) expected() string {
	if c := a.router.Chain(); len(c) > 0 {
		return c[0].ID
	}
	return ""
}

// lastChance reports whether the runner gives up on ev after this
// delivery.
func (a *Answerer) lastChance(ctx context.Context, ev *streams.Event) bool {
	c := a.consumer
	n := streams.Delivery(ctx)
	return ctx.Err() == nil && (c.MaxDeliver > 0 && n >= uint64(c.MaxDeliver) || c.MaxAge > 0 && time.Since(ev.Time) >= c.MaxAge)
}

// ending is how an answer ends: the stored event's type and payload.
type ending struct {
	kind streams.EventType
	data streams.ChatAnswerData
}

// failed is an answer that ended as class, keeping what was written.
func failed(class string, lv *live) ending {
	text, _ := lv.written()
	return ending{kind: streams.ChatFailed, data: streams.ChatAnswerData{
		Content: text, Incomplete: text != "", Reason: streams.ChatClassReason(class), ReasonClass: class, Citations: []streams.Citation{},
	}}
}

// answer writes the answer to d and says how it ended; an error is
// trouble on our side, worth another delivery. budget is what checking
// the owner's budget said.
func (a *Answerer) answer(ctx context.Context, ev *streams.Event, d streams.ChatAskedData, tr *streams.Transcript, lv *live, budget error) (ending, error) {
	if err := budget; err != nil {
		var ex *quota.Exceeded
		if errors.As(err, &ex) {
			return failed(streams.ClassBudgetSpent, lv), nil
		}
		return ending{}, err
	}
	material, retrieved, err := a.ground(ctx, ev.Owner, d)
	var perm *streams.PermanentError
	if errors.As(err, &perm) {
		zerolog.Ctx(ctx).Error().Err(err).Str("reason_class", perm.Class).Msg("cannot ground the answer")
		return failed(perm.Class, lv), nil
	}
	if err != nil {
		return ending{}, err
	}
	req := a.request(tr, d, material)
	res, err := a.router.ConverseStream(ctx, req, lv.delta)
	if res != nil {
		a.count(ctx, ev.Owner, d.AnswerID, res)
	}
	end, err := a.outcome(ctx, res, err, lv)
	if err != nil {
		return end, err
	}
	text, _ := lv.written()
	end.data.Citations = Cited(text, retrieved)
	return end, nil
}

// outcome turns the router's answer into how the answer ends.
func (a *Answerer) outcome(ctx context.Context, res *router.Result, err error, lv *live) (ending, error) {
	text, _ := lv.written()
	var (
		interrupted *router.InterruptedError
		busy        *router.BusyError
		rejected    *router.PermanentError
		end         ending
	)
	switch {
	case err == nil:
		end = ending{kind: streams.ChatAnswered, data: streams.ChatAnswerData{Content: text}}
		if res.StopReason == string(types.StopReasonMaxTokens) {
			// Cut off at the output budget: kept as written, and marked.
			end.data.Incomplete = true
			end.data.ReasonClass = streams.ClassIncompleteOutput
			end.data.Reason = streams.ChatClassReason(streams.ClassAnswerInterrupted)
		}
	case errors.As(err, &interrupted), text != "":
		// After the first delta there is no fallback: what was written
		// stays, marked incomplete (also when our shutdown cut it off).
		end = failed(streams.ClassAnswerInterrupted, lv)
		zerolog.Ctx(ctx).Warn().Err(err).Int("written_bytes", len(text)).Msg("answer interrupted")
	case errors.As(err, &busy):
		// A chat cannot wait for minutes as a document does.
		end = failed(streams.ClassModelsBusy, lv)
	case errors.Is(err, router.ErrTooLarge):
		end = failed(streams.ClassTooLargeForModels, lv)
	case errors.As(err, &rejected):
		end = failed(streams.ClassModelRejected, lv)
	default:
		return ending{}, err
	}
	if res != nil {
		end.data.Model, end.data.Attempts = res.Model.ID, res.Attempts
		end.data.InputTokens, end.data.OutputTokens, end.data.CostUSD = res.InputTokens, res.OutputTokens, res.CostUSD
	}
	attemptsOf(&end, err)
	return end, nil
}

// attemptsOf keeps the attempt trail a failed call reports.
func attemptsOf(end *ending, err error) {
	if end.data.Attempts != nil {
		return
	}
	var busy *router.BusyError
	var rejected *router.PermanentError
	switch {
	case errors.As(err, &busy):
		end.data.Attempts = busy.Attempts
	case errors.As(err, &rejected):
		end.data.Attempts = rejected.Attempts
	}
}

// request frames the turn: the system prompt, the history that fits, and
// the question with its material.
func (a *Answerer) request(tr *streams.Transcript, d streams.ChatAskedData, material prompt.Material) router.Request {
	user := prompt.ChatUser(d.Content, material, prompt.Nonce())
	turn := router.EstimateTokens(prompt.ChatSystem) + router.EstimateTokens(user) + messageOverhead
	budget := HistoryBudget(a.cfg.HistoryTokens, a.router.Chain(), a.cfg.MaxOutputTokens, turn)
	kept, dropped := Fit(Turns(tr, d.AnswerID), budget)
	msgs := Messages(kept, dropped, user)
	input := router.EstimateTokens(prompt.ChatSystem)
	for _, m := range msgs {
		input += router.EstimateTokens(m.Content[0].(*types.ContentBlockMemberText).Value) + messageOverhead
	}
	return router.Request{
		Interactive:     true,
		InputTokens:     input,
		MaxOutputTokens: a.cfg.MaxOutputTokens,
		Build: func(m router.Model, maxOut int) *bedrockruntime.ConverseInput {
			return &bedrockruntime.ConverseInput{
				ModelId:         aws.String(m.ID),
				System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: prompt.ChatSystem}},
				Messages:        msgs,
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(maxOut))},
			}
		},
	}
}

// checkBudget refuses to call a model for an owner whose daily budget
// is spent (*quota.Exceeded); other errors are the bucket's.
func (a *Answerer) checkBudget(ctx context.Context, owner string) error {
	if a.budget == nil {
		return nil
	}
	return a.budget.Check(ctx, owner)
}

// count adds what a call spent to the owner's day, keyed by the answer
// and the delivery, so a count made twice counts once. A count that
// cannot be written is logged, not retried: answering again would spend
// more than it counts.
func (a *Answerer) count(ctx context.Context, owner, answer string, res *router.Result) {
	tokens := int64(res.InputTokens + res.OutputTokens)
	if a.budget == nil || tokens == 0 {
		return
	}
	if err := a.budget.Spend(ctx, owner, answer, 1, streams.Delivery(ctx), tokens); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Int64("tokens", tokens).Msg("model tokens not counted against the daily budget")
	}
}

// end publishes the one stored event that ends the answer. When the
// answer had ended already (an API's watchdog gave up on it first), the
// stream keeps that end and drops this one.
func (a *Answerer) end(ctx context.Context, m streams.ChatMeta, d streams.ChatAskedData, asked time.Time, end ending, lv *live) error {
	_, firstToken := lv.written()
	end.data.AnswerID, end.data.MessageID = d.AnswerID, d.MessageID
	end.data.LatencyMS = time.Since(asked).Milliseconds()
	end.data.FirstTokenMS = firstToken.Milliseconds()
	ev, err := streams.NewChatEvent(a.pub.Source(), m, end.kind, d.AnswerID, end.data)
	if err != nil {
		return streams.Permanent(streams.ClassBadEvent, err)
	}
	// Published even when shutdown has cut the answer short: it is the
	// answer's only end.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := a.pub.Publish(pctx, ev); err != nil {
		return err
	}
	log := zerolog.Ctx(ctx)
	if ev.Duplicate {
		log.Info().Msg("the answer had ended already; this end is dropped")
		return nil
	}
	outcome := "complete"
	if end.data.ReasonClass != "" {
		outcome = end.data.ReasonClass
	}
	a.metrics.ended(outcome, firstToken)
	log.Info().Str("outcome", outcome).Str("model", end.data.Model).Int("citations", len(end.data.Citations)).
		Int("input_tokens", end.data.InputTokens).Int("output_tokens", end.data.OutputTokens).Float64("cost_usd", end.data.CostUSD).
		Int64("first_token_ms", end.data.FirstTokenMS).Int64("latency_ms", end.data.LatencyMS).Str("prompt", prompt.ChatVersion).
		Msg("answer ended")
	return nil
}

// publishTimeout bounds the publication of an answer's end.
const publishTimeout = 10 * time.Second
