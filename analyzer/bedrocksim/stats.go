package bedrocksim

import (
	"maps"
	"sync"
	"time"
)

// Stats is a snapshot of what the simulator has seen since start or the last
// reset. Tests and benchmarks read it to prove a client stayed within quota.
type Stats struct {
	Since  time.Time             `json:"since"`
	Models map[string]ModelStats `json:"models"`
	// Rejected counts requests refused before a model was involved
	// (authentication, unknown model, unknown operation), by error code.
	Rejected map[string]int64 `json:"rejected"`
}

// ModelStats are the counters of one model.
type ModelStats struct {
	// Requests counts every request addressed to the model, whatever its fate.
	Requests  int64 `json:"requests"`
	Successes int64 `json:"successes"`
	// Throttles counts ThrottlingExceptions by reason: requests (RPM),
	// tokens (TPM), fault (random injection) or storm.
	Throttles map[string]int64 `json:"throttles"`
	// Errors counts every other failure by exception name, including
	// mid-stream exceptions and "ClientCanceled" for abandoned requests.
	Errors       map[string]int64 `json:"errors"`
	InputTokens  int64            `json:"input_tokens"`
	OutputTokens int64            `json:"output_tokens"`
	// PeakRequestsPer60s is the most requests seen in any 60 s window and
	// PeakTokensPer60s the most tokens (input + output of completed
	// requests); windows slide in 1 s steps.
	PeakRequestsPer60s int64 `json:"peak_requests_per_60s"`
	PeakTokensPer60s   int64 `json:"peak_tokens_per_60s"`
	InFlight           int64 `json:"in_flight"`
	PeakInFlight       int64 `json:"peak_in_flight"`
}

// window counts events per second over the last 60 seconds and remembers the
// largest 60 s total ever seen.
type window struct {
	secs  [60]int64
	count [60]int64
	peak  int64
}

func (w *window) add(now time.Time, n int64) {
	sec := now.Unix()
	i := int(((sec % 60) + 60) % 60)
	if w.secs[i] != sec {
		w.secs[i], w.count[i] = sec, 0
	}
	w.count[i] += n
	var total int64
	for j := range w.secs {
		if w.secs[j] > sec-60 && w.secs[j] <= sec {
			total += w.count[j]
		}
	}
	w.peak = max(w.peak, total)
}

type modelCounters struct {
	mu     sync.Mutex
	s      ModelStats
	reqWin window
	tokWin window
}

func newModelCounters() *modelCounters {
	return &modelCounters{s: ModelStats{Throttles: map[string]int64{}, Errors: map[string]int64{}}}
}

// start records an arriving request and returns a func that marks it done.
func (c *modelCounters) start(now time.Time) {
	c.mu.Lock()
	c.s.Requests++
	c.s.InFlight++
	c.s.PeakInFlight = max(c.s.PeakInFlight, c.s.InFlight)
	c.reqWin.add(now, 1)
	c.s.PeakRequestsPer60s = c.reqWin.peak
	c.mu.Unlock()
}

// finish records the outcome of a request started with start. err nil
// means success; in/out are the tokens of the (possibly partial) answer.
func (c *modelCounters) finish(now time.Time, err *apiError, in, out int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s.InFlight--
	switch {
	case err == nil:
		c.s.Successes++
	case err.Code == "ThrottlingException":
		c.s.Throttles[err.reason]++
	default:
		c.s.Errors[err.Code]++
	}
	if in+out > 0 {
		c.s.InputTokens += int64(in)
		c.s.OutputTokens += int64(out)
		c.tokWin.add(now, int64(in+out))
		c.s.PeakTokensPer60s = c.tokWin.peak
	}
}

func (c *modelCounters) snapshot() ModelStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.s
	s.Throttles = maps.Clone(c.s.Throttles)
	s.Errors = maps.Clone(c.s.Errors)
	return s
}

func (c *modelCounters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	inflight := c.s.InFlight
	c.s = ModelStats{Throttles: map[string]int64{}, Errors: map[string]int64{}, InFlight: inflight, PeakInFlight: inflight}
	c.reqWin, c.tokWin = window{}, window{}
}

// rejects counts errors not attributable to a model.
type rejects struct {
	mu     sync.Mutex
	byCode map[string]int64
	since  time.Time
}

func (r *rejects) add(code string) {
	r.mu.Lock()
	r.byCode[code]++
	r.mu.Unlock()
}
