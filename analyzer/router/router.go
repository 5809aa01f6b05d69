package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/rs/zerolog"
)

// Converser is Bedrock's Converse operation: one answer, whole.
type Converser interface {
	Converse(ctx context.Context, in *bedrockruntime.ConverseInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error)
}

// Streamer is Bedrock's ConverseStream operation: the answer as it is
// written.
type Streamer interface {
	ConverseStream(ctx context.Context, in *bedrockruntime.ConverseStreamInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseStreamOutput, error)
}

// Client is what the router drives: Converse for document analysis,
// ConverseStream for the chatbot. *bedrockruntime.Client is one.
type Client interface {
	Converser
	Streamer
}

// Options tune the router.
type Options struct {
	// MaxHops bounds the models tried for one request (fallbacks after
	// throttles and errors); default twice the chain length.
	MaxHops int
	// Deadline bounds one request across all its attempts; default 5 min.
	Deadline time.Duration
	// MaxWait is how long a request may wait in process for capacity before
	// the router gives up with a BusyError telling when to come back.
	MaxWait time.Duration
	// Clock defaults to the wall clock.
	Clock Clock
}

// Router picks models and calls them.
type Router struct {
	chain   Chain
	shared  *Shared
	client  Client
	opts    Options
	metrics *Metrics
	clock   Clock
}

// New returns a router over chain. metrics may be nil.
func New(chain Chain, shared *Shared, client Client, opts Options, metrics *Metrics) (*Router, error) {
	if err := chain.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxHops <= 0 {
		opts.MaxHops = 2 * len(chain)
	}
	if opts.Deadline <= 0 {
		opts.Deadline = 5 * time.Minute
	}
	if opts.Clock == nil {
		opts.Clock = WallClock{}
	}
	return &Router{chain: chain, shared: shared, client: client, opts: opts, metrics: metrics, clock: opts.Clock}, nil
}

// Chain returns the router's models, best first.
func (r *Router) Chain() Chain { return r.chain }

// Preferred returns the model the router would choose now, capacity
// aside: the first model of the chain that accepts says fits and that is
// neither cooling nor behind an open breaker (a full window frees up within
// a minute; a cooldown or an outage may last). When every such model is
// resting it returns the first that fits, and ErrTooLarge when none fits.
// It only reads the shared state.
func (r *Router) Preferred(ctx context.Context, fits func(Model) bool) (Model, error) {
	first, ok := r.firstWhere(fits)
	if !ok {
		return Model{}, ErrTooLarge
	}
	for _, m := range r.chain {
		if !fits(m) {
			continue
		}
		snap, err := r.shared.Snapshot(ctx, m)
		if err != nil {
			return Model{}, err
		}
		if snap.CoolingFor == 0 && !snap.BreakerOpen {
			return m, nil
		}
	}
	return first, nil
}

// Request is one model call to route.
type Request struct {
	Interactive     bool // the chatbot: served before batch analysis when both wait
	InputTokens     int  // estimated input tokens (EstimateTokens)
	MaxOutputTokens int  // wanted output budget; capped by each model's maximum
	// Build makes the Converse input for the chosen model.
	Build func(m Model, maxOutputTokens int) *bedrockruntime.ConverseInput
	// Models, when set, restricts the chain (e.g. to the model a cached
	// result or a map phase used); nil = the whole chain.
	Models func(m Model) bool
}

// Result is a successful call, or the part of a streamed answer that was
// delivered before the stream broke (see InterruptedError).
type Result struct {
	Output *bedrockruntime.ConverseOutput // Converse's answer; nil for ConverseStream
	Text   string                         // the streamed text; empty for Converse
	// FirstToken is the time from the start of ConverseStream (waits and
	// failed attempts included, as the user waits for them) to the first
	// text delta; 0 for Converse.
	FirstToken   time.Duration
	StopReason   string // end_turn, max_tokens, tool_use...; empty when a stream broke
	Model        Model
	Attempts     []streams.Attempt
	InputTokens  int
	OutputTokens int
	CostUSD      float64
}

// BusyError: every model is cooling, open or out of quota. Nothing failed;
// come back after RetryAfter.
type BusyError struct {
	RetryAfter time.Duration
	Attempts   []streams.Attempt
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("every model is busy; capacity expected in %s", e.RetryAfter.Round(time.Millisecond))
}

// ErrTooLarge: the request fits no model's context window or per-minute
// token quota.
var ErrTooLarge = errors.New("the request is larger than every model's context window or token quota")

// PermanentError: the model rejected the request itself (validation,
// access); another model or a retry will not help.
type PermanentError struct {
	Err      error
	Attempts []streams.Attempt
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// InterruptedError: a streamed answer broke (an exception from the model,
// a broken connection, our deadline) after some of its text had been given
// to the caller. That text is in the Result returned with it; the answer is
// incomplete, and no other model was tried, since the caller has already
// shown part of this one.
type InterruptedError struct {
	Err      error
	Attempts []streams.Attempt
}

func (e *InterruptedError) Error() string { return e.Err.Error() }
func (e *InterruptedError) Unwrap() error { return e.Err }

// Converse routes one request: the best model with capacity, falling back
// down the chain on throttles and server errors, within a hop limit and a
// total deadline. It returns *BusyError when no model has capacity within
// MaxWait, ErrTooLarge or *PermanentError when retrying cannot help, and
// other errors for trouble worth a retry later.
func (r *Router) Converse(ctx context.Context, req Request) (*Result, error) {
	return r.route(ctx, req, func(ctx context.Context, m Model, maxOut int) called {
		out, err := r.client.Converse(ctx, req.Build(m, maxOut))
		c := called{out: out, err: err}
		if out != nil {
			c.stop = string(out.StopReason)
			c.in, c.outTok = usage(out)
		}
		return c
	})
}

// called is how one model call went.
type called struct {
	out        *bedrockruntime.ConverseOutput // Converse's answer
	text       string                         // ConverseStream: the text given to onText
	stop       string
	in, outTok int           // tokens the model reported (or, for a broken stream, estimated)
	firstToken time.Duration // ConverseStream: from the router call's start to the first delta
	// delivered: text reached the caller, so the answer belongs to this
	// model whatever happens next; no other model may be tried.
	delivered bool
	stopped   bool // err came from the caller's onText
	err       error
}

// route runs the routing loop around call, one model call.
func (r *Router) route(ctx context.Context, req Request, call func(ctx context.Context, m Model, maxOut int) called) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.Deadline)
	defer cancel()
	var attempts []streams.Attempt
	waited := time.Duration(0)
	for hops := 0; hops < r.opts.MaxHops; {
		res, wait, err := r.reserveBest(ctx, req)
		if err != nil {
			return nil, err
		}
		if res == nil {
			if waited+wait > r.opts.MaxWait {
				r.metrics.busy(req.Interactive)
				return nil, &BusyError{RetryAfter: wait, Attempts: attempts}
			}
			if err := r.clock.Sleep(ctx, wait); err != nil {
				return nil, err
			}
			waited += wait
			continue
		}
		m := res.Model
		start := time.Now()
		c := call(ctx, m, min(req.MaxOutputTokens, m.MaxOutputTokens))
		latency := time.Since(start)
		class := bedrock.Classify(c.err)
		outcome, said := describe(class)
		if c.delivered && c.err != nil {
			outcome, said = "interrupted", "the answer was cut off"
			if c.stopped {
				outcome, said = "stopped", "the answer was stopped by its reader"
			}
		}
		attempt := streams.Attempt{Model: m.ID, LatencyMS: latency.Milliseconds(), Outcome: outcome}
		if c.err != nil {
			attempt.Error = said
			lvl := zerolog.WarnLevel
			if class == bedrock.ClassThrottled || class == bedrock.ClassNotReady || c.stopped {
				lvl = zerolog.InfoLevel // routine: the router moves on, or the reader left
			}
			zerolog.Ctx(ctx).WithLevel(lvl).Err(c.err).Str("model", m.ID).Str("outcome", attempt.Outcome).
				Int64("latency_ms", attempt.LatencyMS).Msg("model call failed")
		}
		attempts = append(attempts, attempt)
		r.metrics.call(m.ID, attempt.Outcome, latency)

		if c.delivered && c.err != nil {
			return r.partial(ctx, req, res, class, c, attempts)
		}
		switch class {
		case bedrock.ClassNone:
			return r.served(ctx, req, res, c, attempts, Succeeded)
		case bedrock.ClassThrottled, bedrock.ClassNotReady:
			// Bedrock consumed nothing; the cooldown keeps every replica off it.
			if err := r.shared.Settle(ctx, res, 0, throttleOutcome(class), bedrock.RetryHint(c.err)); err != nil {
				return nil, fmt.Errorf("settle %s: %w", m.ID, err)
			}
		case bedrock.ClassPermanent:
			if serr := r.settle(ctx, res, 0, ClientError); serr != nil {
				zerolog.Ctx(ctx).Warn().Err(serr).Msg("settle after a rejected request")
			}
			return nil, &PermanentError{Err: fmt.Errorf("model %s rejected the request: %w", m.ID, c.err), Attempts: attempts}
		default:
			if ctx.Err() != nil {
				// Our deadline or shutdown, not the model's fault: no
				// mark against its breaker.
				if serr := r.settle(context.WithoutCancel(ctx), res, res.Tokens, Abandoned); serr != nil {
					zerolog.Ctx(ctx).Warn().Err(serr).Msg("settle after deadline")
				}
				return nil, fmt.Errorf("request deadline passed after %d attempts: %w", len(attempts), c.err)
			}
			if err := r.settle(ctx, res, res.Tokens, ServerError); err != nil {
				return nil, err
			}
		}
		hops++
	}
	return nil, fmt.Errorf("gave up after %d attempts across the chain", len(attempts))
}

// served settles a call that produced an answer (whole, or part of one)
// with the tokens it used and returns its Result.
func (r *Router) served(ctx context.Context, req Request, res *Reservation, c called, attempts []streams.Attempt, o Outcome) (*Result, error) {
	m := res.Model
	if err := r.shared.Settle(ctx, res, m.QuotaTokens(c.in, c.outTok), o, bedrock.RetryHint(c.err)); err != nil {
		return nil, fmt.Errorf("settle %s: %w", m.ID, err)
	}
	cost := m.Cost(c.in, c.outTok)
	r.metrics.tokens(m.ID, c.in, c.outTok, cost)
	if m.ID != r.first(req).ID {
		r.metrics.fallback(m.ID)
	}
	return &Result{Output: c.out, Text: c.text, FirstToken: c.firstToken, StopReason: c.stop, Model: m, Attempts: attempts,
		InputTokens: c.in, OutputTokens: c.outTok, CostUSD: cost}, nil
}

// partial ends a stream that failed after text reached the caller: the
// answer belongs to this model, so it is settled with an estimate of what
// it used and returned as it stands, never retried elsewhere.
func (r *Router) partial(ctx context.Context, req Request, res *Reservation, class bedrock.Class, c called, attempts []streams.Attempt) (*Result, error) {
	c.in, c.outTok = req.InputTokens, EstimateTokens(c.text)
	o := ServerError
	switch {
	case c.stopped || ctx.Err() != nil:
		o = Succeeded // the reader or our deadline ended it; the model was serving
	case class == bedrock.ClassThrottled || class == bedrock.ClassNotReady:
		o = throttleOutcome(class)
	}
	out, err := r.served(context.WithoutCancel(ctx), req, res, c, attempts, o)
	if err != nil {
		return nil, err
	}
	if c.stopped {
		return out, fmt.Errorf("the reader stopped the answer of %s: %w", res.Model.ID, c.err)
	}
	return out, &InterruptedError{Err: fmt.Errorf("the answer of %s was cut off: %w", res.Model.ID, c.err), Attempts: attempts}
}

func throttleOutcome(c bedrock.Class) Outcome {
	if c == bedrock.ClassNotReady {
		return NotReady
	}
	return Throttled
}

func (r *Router) settle(ctx context.Context, res *Reservation, used int, o Outcome) error {
	if err := r.shared.Settle(ctx, res, used, o, 0); err != nil {
		return fmt.Errorf("settle %s: %w", res.Model.ID, err)
	}
	return nil
}

// first is the model the request would get with capacity everywhere.
func (r *Router) first(req Request) Model {
	if m, ok := r.firstWhere(req.Models); ok {
		return m
	}
	return r.chain[0]
}

// firstWhere is the best model of the chain that accepts (nil: any).
func (r *Router) firstWhere(accepts func(Model) bool) (Model, bool) {
	for _, m := range r.chain {
		if accepts == nil || accepts(m) {
			return m, true
		}
	}
	return Model{}, false
}

// reserveBest reserves capacity on the first model of the chain that has
// it, or reports how long until one will.
func (r *Router) reserveBest(ctx context.Context, req Request) (*Reservation, time.Duration, error) {
	earliest := time.Duration(-1)
	fits := false
	for _, m := range r.chain {
		if req.Models != nil && !req.Models(m) {
			continue
		}
		maxOut := min(req.MaxOutputTokens, m.MaxOutputTokens)
		quota := m.QuotaTokens(req.InputTokens, maxOut)
		if req.InputTokens+maxOut > m.ContextTokens || quota > m.TokensPerMinute {
			continue // never fits this model: its window, or a minute of its token quota
		}
		fits = true
		res, ref, err := r.shared.Reserve(ctx, m, quota, req.Interactive)
		if err != nil {
			return nil, 0, err
		}
		if res != nil {
			return res, 0, nil
		}
		r.metrics.refused(m.ID, ref.Reason)
		if earliest < 0 || ref.Wait < earliest {
			earliest = ref.Wait
		}
	}
	if !fits {
		return nil, 0, ErrTooLarge
	}
	return nil, earliest, nil
}

func usage(out *bedrockruntime.ConverseOutput) (in, outTok int) {
	if out == nil || out.Usage == nil {
		return 0, 0
	}
	return int(aws.ToInt32(out.Usage.InputTokens)), int(aws.ToInt32(out.Usage.OutputTokens))
}

// describe returns the outcome of a call of class c in the attempt trail,
// which is stored with the assessment and shown to users: the outcome for
// programs, and what happened in our words (Bedrock's go to the log).
func describe(c bedrock.Class) (outcome, said string) {
	switch c {
	case bedrock.ClassNone:
		return "ok", ""
	case bedrock.ClassThrottled:
		return "throttled", "the model was over its quota"
	case bedrock.ClassNotReady:
		return "not_ready", "the model was not ready"
	case bedrock.ClassPermanent:
		return "rejected", "the model rejected the request"
	}
	return "error", "the model call failed"
}
