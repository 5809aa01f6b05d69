package bedrocksim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Faults are the injected failures for one model (or "*" for every model
// without its own entry). Probabilities are per request, in [0,1], and their
// sum must not exceed 1: one draw decides which fault (if any) a request
// gets, so a seeded run fails the same requests every time.
type Faults struct {
	Throttle    float64 `json:"throttle,omitempty"`    // 429 ThrottlingException
	NotReady    float64 `json:"not_ready,omitempty"`   // 429 ModelNotReadyException
	Unavailable float64 `json:"unavailable,omitempty"` // 503 ServiceUnavailableException
	Internal    float64 `json:"internal,omitempty"`    // 500 InternalServerException
	Timeout     float64 `json:"timeout,omitempty"`     // 408 ModelTimeoutException, after the full latency
	// MidStream is the chance that a streaming response is cut halfway by
	// an exception frame of type MidStreamException (default
	// throttlingException; also serviceUnavailableException,
	// internalServerException, modelStreamErrorException, validationException).
	MidStream          float64 `json:"mid_stream,omitempty"`
	MidStreamException string  `json:"mid_stream_exception,omitempty"`
	// MidStreamCut makes a mid-stream fault a broken connection instead:
	// the server drops it halfway, with no exception frame, as a network
	// failure would.
	MidStreamCut bool `json:"mid_stream_cut,omitempty"`
	// Storm fails every request of a time window the same way.
	Storm *Storm `json:"storm,omitempty"`
	// Obedient makes the model follow instructions to go easy on a
	// document when it reads them outside the framed document, i.e. as
	// the user turn's own words: it answers "no material risk". That is
	// what a document that manages to close its frame early would get
	// from a real model, so tests can show the frame holds.
	Obedient bool `json:"obedient,omitempty"`
	// RetryAfterSeconds adds a Retry-After header to this model's injected
	// throttles (Bedrock sends one rarely; clients should honour it).
	RetryAfterSeconds int `json:"retry_after_seconds,omitempty"`
}

// Storm is a scheduled outage: from AfterSeconds after the faults are set,
// for Seconds, every request gets the fault Kind (throttle, not_ready,
// unavailable, internal or timeout). Start and End are filled in by the
// server when the storm is scheduled and shown by GET /_sim/faults.
type Storm struct {
	Kind         string    `json:"kind"`
	AfterSeconds float64   `json:"after_seconds,omitempty"`
	Seconds      float64   `json:"seconds"`
	Start        time.Time `json:"start,omitzero"`
	End          time.Time `json:"end,omitzero"`
}

var faultKinds = []string{"throttle", "not_ready", "unavailable", "internal", "timeout"}

var streamExceptionTypes = []string{"throttlingException", "serviceUnavailableException", "internalServerException", "modelStreamErrorException", "validationException"}

func (f Faults) validate() error {
	sum := 0.0
	for name, p := range map[string]float64{"throttle": f.Throttle, "not_ready": f.NotReady, "unavailable": f.Unavailable,
		"internal": f.Internal, "timeout": f.Timeout, "mid_stream": f.MidStream} {
		if p < 0 || p > 1 {
			return fmt.Errorf("%s probability %v is outside [0,1]", name, p)
		}
		if name != "mid_stream" {
			sum += p
		}
	}
	if sum > 1 {
		return fmt.Errorf("fault probabilities add up to %v, more than 1", sum)
	}
	if f.RetryAfterSeconds < 0 {
		return fmt.Errorf("retry_after_seconds %d is negative", f.RetryAfterSeconds)
	}
	if f.MidStreamException != "" && !slices.Contains(streamExceptionTypes, f.MidStreamException) {
		return fmt.Errorf("mid_stream_exception %q is not one of %v", f.MidStreamException, streamExceptionTypes)
	}
	if s := f.Storm; s != nil {
		if !slices.Contains(faultKinds, s.Kind) {
			return fmt.Errorf("storm kind %q is not one of %v", s.Kind, faultKinds)
		}
		if s.Seconds <= 0 || s.AfterSeconds < 0 {
			return fmt.Errorf("storm needs seconds > 0 and after_seconds >= 0")
		}
	}
	return nil
}

// fault is the error of an injected fault of kind, random or storm:
// throttles carry the plan's Retry-After.
func (f Faults) fault(kind string) *apiError {
	e := faultError(kind)
	if kind == "throttle" {
		e.retryAfter = f.RetryAfterSeconds
	}
	return e
}

func faultError(kind string) *apiError {
	switch kind {
	case "throttle":
		return errThrottle("fault", msgTooManyRequests)
	case "not_ready":
		return errNotReady()
	case "unavailable":
		return errUnavailable()
	case "internal":
		return errInternal()
	default:
		return errTimeout()
	}
}

func streamError(exceptionType string) *apiError {
	switch exceptionType {
	case "serviceUnavailableException":
		return errUnavailable()
	case "internalServerException":
		return errInternal()
	case "modelStreamErrorException":
		return errModelStream()
	case "validationException":
		return errValidation("The model produced invalid output.")
	default:
		return errThrottle("fault", msgTooManyRequests)
	}
}

// faultSet holds the current faults and the seeded random source.
type faultSet struct {
	mu    sync.Mutex
	byKey map[string]Faults
	rng   *rand.Rand
}

func newFaultSet(src rand.Source) *faultSet {
	return &faultSet{byKey: map[string]Faults{}, rng: rand.New(src)}
}

// set validates f, pins a storm to absolute times and stores it under key.
func (fs *faultSet) set(key string, f Faults, now time.Time) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("faults for %q: %w", key, err)
	}
	if f.Storm != nil {
		s := *f.Storm
		s.Start = now.Add(time.Duration(s.AfterSeconds * float64(time.Second)))
		s.End = s.Start.Add(time.Duration(s.Seconds * float64(time.Second)))
		f.Storm = &s
	}
	fs.mu.Lock()
	fs.byKey[key] = f
	fs.mu.Unlock()
	return nil
}

func (fs *faultSet) clear() {
	fs.mu.Lock()
	clear(fs.byKey)
	fs.mu.Unlock()
}

func (fs *faultSet) snapshot() map[string]Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make(map[string]Faults, len(fs.byKey))
	for k, v := range fs.byKey {
		out[k] = v
	}
	return out
}

// decision is what fault injection decided for one request.
type decision struct {
	err       *apiError // fail the request with this (nil = proceed)
	storm     bool
	midStream *apiError // cut a stream halfway with this (nil = no)
	obedient  bool      // follow instructions outside the framed document
}

// decide draws the fate of one request to modelID at now. It always draws
// two numbers, so the sequence of outcomes depends only on the seed and the
// order of requests, not on which faults happen to be configured.
func (fs *faultSet) decide(modelID string, now time.Time) decision {
	fs.mu.Lock()
	f, ok := fs.byKey[modelID]
	if !ok {
		f = fs.byKey["*"]
	}
	u, v := fs.rng.Float64(), fs.rng.Float64()
	fs.mu.Unlock()

	d := decision{obedient: f.Obedient}
	if s := f.Storm; s != nil && !now.Before(s.Start) && now.Before(s.End) {
		d.err, d.storm = f.fault(s.Kind), true
		if d.err.reason != "" {
			d.err.reason = "storm"
		}
		return d
	}
	for _, c := range []struct {
		p    float64
		kind string
	}{{f.Throttle, "throttle"}, {f.NotReady, "not_ready"}, {f.Unavailable, "unavailable"}, {f.Internal, "internal"}, {f.Timeout, "timeout"}} {
		if u < c.p {
			d.err = f.fault(c.kind)
			return d
		}
		u -= c.p
	}
	if v < f.MidStream {
		d.midStream = streamError(f.MidStreamException)
		if f.MidStreamCut {
			d.midStream = errConnectionCut()
		}
	}
	return d
}

// decodeFaults parses a JSON object of model id (or "*") to Faults,
// rejecting unknown fields so typos in a fault plan do not pass silently.
func decodeFaults(raw []byte) (map[string]Faults, error) {
	var m map[string]Faults
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
