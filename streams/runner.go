package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/shutdown"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Handler does one stage's work for one event. It returns nil only once its
// effect is durable (objects stored, events acknowledged by the stream,
// rows committed): the runner acks right after. A redelivered event must
// change nothing, so handlers are idempotent.
type Handler func(ctx context.Context, ev *Event) error

// RunnerOptions configure Run.
type RunnerOptions struct {
	Concurrency int            // events handled at once by this process
	Log         zerolog.Logger // base logger; the runner adds document fields
	Publisher   *Publisher     // publishes document.failed for stages
	Metrics     *RunnerMetrics // nil = not measured
	// DrainTimeout is how long in-flight work may finish after ctx ends
	// before it is cut short and handed back. 0 = shutdown.Drain(ctx),
	// the process's share of SHUTDOWN_GRACE, else 30 s.
	DrainTimeout time.Duration
	// Backoff is the delay before redelivery number n (n >= 1) of a
	// transient failure. Nil = exponential from 1 s, capped at 1 min.
	Backoff func(n uint64) time.Duration
}

// DefaultBackoff doubles from 1 s up to 1 min.
func DefaultBackoff(n uint64) time.Duration {
	if n > 6 {
		return time.Minute
	}
	return time.Duration(1<<(n-1)) * time.Second
}

// RunnerMetrics counts what the runner does, per consumer.
type RunnerMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight *prometheus.GaugeVec
}

// NewRunnerMetrics registers the runner's metrics on reg.
func NewRunnerMetrics(reg prometheus.Registerer) *RunnerMetrics {
	return &RunnerMetrics{
		handled: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_consumer_messages_total",
			Help: "Events handled by a consumer, by outcome (ack, retry, wait, term, fail, handback: given back unstarted or cut short at shutdown).",
		}, []string{"consumer", "outcome"})),
		duration: obs.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "prism_consumer_handle_seconds",
			Help:    "Time a consumer's handler took per event.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"consumer"})),
		inflight: obs.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "prism_consumer_inflight",
			Help: "Events a consumer is handling now in this process.",
		}, []string{"consumer"})),
	}
}

func (m *RunnerMetrics) outcome(consumer, outcome string) {
	if m != nil {
		m.handled.WithLabelValues(consumer, outcome).Inc()
	}
}

// Run binds to the durable consumer c and handles its events with up to
// opts.Concurrency at once until ctx ends; then it stops fetching, hands
// back the events it fetched but has not started, lets in-flight events
// finish (bounded by DrainTimeout) and returns.
//
// Delivery rules, the same for every stage (see decide):
//   - success: acknowledged synchronously (DoubleAck) after the handler's
//     effect is durable;
//   - transient error: NakWithDelay with backoff (or the delay a RetryError
//     asks for), until MaxDeliver deliveries or MaxAge since the event;
//   - permanent error, or the last delivery of a transient one: for stages,
//     a document.failed event with the reason, then TermWithReason; the
//     terminated advisory lands in the DLQ stream;
//   - work whose context ended (shutdown): handed back with a NAK without
//     delay, so another replica takes it at once; never failed;
//   - long work: InProgress heartbeats every AckWait/3.
func Run(ctx context.Context, js jetstream.JetStream, c Consumer, h Handler, opts RunnerOptions) error {
	if c.PublishFailures && opts.Publisher == nil {
		return fmt.Errorf("consumer %s publishes failures but has no publisher", c.Name)
	}
	return consume(ctx, js, c, opts, eventPreparer(c, h))
}

// eventPreparer decodes a DOCS or CHAT message into an event for h.
func eventPreparer(c Consumer, h Handler) prepareFunc {
	return func(r *runner, msg jetstream.Msg, md *jetstream.MsgMetadata) (*delivery, bool) {
		ev, err := ParseEvent(msg.Subject(), msg.Data())
		if err != nil {
			// Poison: nobody can ever handle it. Terminate so the DLQ keeps it.
			r.log.Error().Err(err).Uint64("stream_seq", md.Sequence.Stream).Msg("undecodable event; terminating")
			r.opts.Metrics.outcome(c.Name, "term")
			_ = msg.TermWithReason(ClassBadEvent + ": undecodable event: " + truncate(err.Error(), 200))
			return nil, false
		}
		ev.Seq = md.Sequence.Stream
		meta := MetaOf(ev)
		about := "document_id"
		if ev.IsChat() {
			about = "session_id"
		}
		return &delivery{
			log: r.log.With().
				Str(about, ev.Subject).
				Str("correlation_id", ev.CorrelationID).
				Str("owner", ev.Owner).
				Str("event", string(ev.EventKind())).
				Str("event_id", ev.ID).
				Uint64("delivery", md.NumDelivered).
				Logger(),
			meta: &meta,
			call: func(ctx context.Context) error { return h(ctx, ev) },
		}, true
	}
}

// MsgHandler handles a raw message of a stream other than DOCS, such as
// documents arriving on the intake subject.
type MsgHandler func(ctx context.Context, msg jetstream.Msg) error

// RunMessages is Run for raw messages: the same delivery rules, without
// document.failed events (the handler publishes what it knows itself).
func RunMessages(ctx context.Context, js jetstream.JetStream, c Consumer, h MsgHandler, opts RunnerOptions) error {
	return consume(ctx, js, c, opts, func(r *runner, msg jetstream.Msg, md *jetstream.MsgMetadata) (*delivery, bool) {
		return &delivery{
			log:  r.log.With().Str("subject", msg.Subject()).Uint64("stream_seq", md.Sequence.Stream).Uint64("delivery", md.NumDelivered).Logger(),
			call: func(ctx context.Context) error { return h(ctx, msg) },
		}, true
	})
}

type deliveryKey struct{}

// WithDelivery records in ctx which delivery of its message a handler is
// running (1 for the first); the runner sets it.
func WithDelivery(ctx context.Context, n uint64) context.Context {
	return context.WithValue(ctx, deliveryKey{}, n)
}

// Delivery is the delivery number WithDelivery recorded, or 0. A handler
// that announces each attempt (a document waiting for model capacity, then
// analyzed) keys its events by it, so every attempt gets its own event id
// instead of being deduplicated into the first.
func Delivery(ctx context.Context) uint64 {
	n, _ := ctx.Value(deliveryKey{}).(uint64)
	return n
}

// delivery is one message ready for its handler.
type delivery struct {
	log  zerolog.Logger
	meta *Meta // the document it concerns, when known
	call func(ctx context.Context) error
}

type prepareFunc func(r *runner, msg jetstream.Msg, md *jetstream.MsgMetadata) (*delivery, bool)

// session is a bound consumer being read: the iterator, and the context
// handlers run on. Handlers run on their own context: when ctx ends they
// get DrainTimeout to finish rather than being cut off mid-effect.
type session struct {
	it      jetstream.MessagesContext
	opts    RunnerOptions
	log     zerolog.Logger
	workCtx context.Context
	close   func()
}

// open applies the option defaults, binds the durable consumer and starts
// reading with a client buffer of buffer messages; when ctx ends the
// iterator drains.
func open(ctx context.Context, js jetstream.JetStream, c Consumer, opts RunnerOptions, buffer func(RunnerOptions) int) (*session, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = shutdown.Drain(ctx, 30*time.Second)
	}
	if opts.Backoff == nil {
		opts.Backoff = DefaultBackoff
	}
	cons, err := c.Bind(ctx, js)
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(buffer(opts)), jetstream.PullHeartbeat(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", c.Name, err)
	}
	log := opts.Log.With().Str("consumer", c.Name).Logger()
	log.Info().Int("concurrency", opts.Concurrency).Msg("consumer started")
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		it.Drain()
		time.AfterFunc(opts.DrainTimeout, cancelWork)
	})
	return &session{it: it, opts: opts, log: log, workCtx: workCtx, close: func() { stop(); cancelWork() }}, nil
}

func consume(ctx context.Context, js jetstream.JetStream, c Consumer, opts RunnerOptions, prepare prepareFunc) error {
	// A small client buffer: slow work must not sit in a buffer past its
	// AckWait and run twice.
	ss, err := open(ctx, js, c, opts, func(o RunnerOptions) int { return o.Concurrency })
	if err != nil {
		return err
	}
	defer ss.close()
	it, opts, log, workCtx := ss.it, ss.opts, ss.log, ss.workCtx

	r := &runner{c: c, prepare: prepare, opts: opts, log: log}
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		sem <- struct{}{}
		msg, err := it.Next()
		if err != nil {
			<-sem
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				log.Info().Msg("consumer drained")
				return nil
			}
			// Missed heartbeats and the like: the iterator recovers by itself.
			log.Warn().Err(err).Msg("consumer next")
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if ctx.Err() != nil {
			// Fetched before the drain but not started: not ours to begin.
			r.handBack(msg)
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r.handle(workCtx, msg)
		}()
	}
}

type runner struct {
	c       Consumer
	prepare prepareFunc
	opts    RunnerOptions
	log     zerolog.Logger
}

func (r *runner) handle(ctx context.Context, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		r.log.Error().Err(err).Str("subject", msg.Subject()).Msg("message without metadata; terminating")
		_ = msg.TermWithReason("no metadata")
		return
	}
	d, ok := r.prepare(r, msg, md)
	if !ok {
		return
	}
	log := d.log
	ctx = WithDelivery(log.WithContext(ctx), md.NumDelivered)

	hbCtx, stopHB := context.WithCancel(ctx)
	go heartbeat(hbCtx, msg, r.c.AckWait/3)

	start := time.Now()
	if m := r.opts.Metrics; m != nil {
		m.inflight.WithLabelValues(r.c.Name).Inc()
		defer m.inflight.WithLabelValues(r.c.Name).Dec()
	}
	herr := safeCall(ctx, d.call)
	stopHB()
	if m := r.opts.Metrics; m != nil {
		m.duration.WithLabelValues(r.c.Name).Observe(time.Since(start).Seconds())
	}

	dec := decide(policyOf(r.c, r.opts), attempt{
		err: herr, canceled: ctx.Err() != nil, delivered: md.NumDelivered, age: time.Since(md.Timestamp),
	})
	if dec.action == actFail && r.c.PublishFailures && d.meta != nil {
		_, err := r.opts.Publisher.Emit(ctx, *d.meta, Failed, "", FailedData{
			Stage: r.c.Stage, Reason: truncate(dec.reason, 2000), ReasonClass: dec.class, Attempts: int(md.NumDelivered),
		})
		if err != nil {
			log.Error().Err(err).Msg("cannot publish failed event; will retry")
			dec = unpublished(policyOf(r.c, r.opts))
		}
	}
	r.carryOut(ctx, msg, dec, herr, log)
}

// handBack returns a message this process will not handle (it is
// stopping) to the consumer at once, so another replica takes it now
// rather than after AckWait.
func (r *runner) handBack(msg jetstream.Msg) {
	r.opts.Metrics.outcome(r.c.Name, "handback")
	if err := msg.Nak(); err != nil {
		r.log.Warn().Err(err).Str("subject", msg.Subject()).Msg("cannot hand back an unstarted message; redelivered after AckWait")
	}
}

// carryOut does what decide decided.
func (r *runner) carryOut(ctx context.Context, msg jetstream.Msg, d decision, herr error, log zerolog.Logger) {
	r.opts.Metrics.outcome(r.c.Name, d.outcome)
	switch d.action {
	case actAck:
		// The handler's context may have ended just now; the ack still
		// goes out, or the finished work would be done again.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
		defer cancel()
		if err := msg.DoubleAck(actx); err != nil {
			// The effect is durable; the redelivery that follows is a no-op.
			log.Warn().Err(err).Msg("ack failed; message will be redelivered")
		}
	case actRetry:
		if d.delay == 0 {
			log.Info().Err(herr).Msg("cut short by shutdown; handed back")
		} else {
			log.Warn().Err(herr).Dur("retry_in", d.delay).Msg("transient failure; will retry")
		}
		_ = msg.NakWithDelay(d.delay) // 0: a plain NAK, redelivered at once
	case actFail:
		log.Error().Err(herr).Str("reason_class", d.class).Msg("failed at this stage")
		_ = msg.TermWithReason(truncate(d.class+": "+d.reason, 256))
	}
}

// ackTimeout bounds the wait for the server to confirm an ack.
const ackTimeout = 5 * time.Second

// safeCall turns a handler panic into a transient error, so one bad event
// cannot take a worker process down.
func safeCall(ctx context.Context, call func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return call(ctx)
}

func heartbeat(ctx context.Context, msg jetstream.Msg, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = msg.InProgress()
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
