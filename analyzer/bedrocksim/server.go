// Package bedrocksim is a simulator of the Amazon Bedrock Runtime API for
// tests, benchmarks and local development. It is not a language model: it
// speaks Bedrock's wire protocol (Converse, ConverseStream, InvokeModel and
// InvokeModelWithResponseStream, SigV4, event streams, Bedrock's exceptions),
// enforces per-model quotas, models latency, injects faults on demand, and
// answers deterministically from the text it is given, including risk
// assessments derived from a lexicon of risk terms.
package bedrocksim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/rs/zerolog"
)

// Server is a simulated Bedrock Runtime endpoint; it is an http.Handler.
// All state lives in the Server, so several can run side by side.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	clock    Clock
	models   map[string]*modelState
	order    []string
	faults   *faultSet
	signer   *v4.Signer
	matcher  *matcher
	rejects  rejects
	requests requestLog
	reqSeq   atomic.Uint64
	idPrefix string
}

type modelState struct {
	Model
	lim   *limiter
	stats *modelCounters
}

// New checks cfg and builds a Server.
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if cfg.Models == nil {
		cfg.Models = DefaultModels()
	}
	if len(cfg.Models) == 0 {
		return nil, errors.New("bedrocksim: no models configured")
	}
	if cfg.Speed < 0 {
		return nil, fmt.Errorf("bedrocksim: speed %v is negative", cfg.Speed)
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, errors.New("bedrocksim: access key and secret key must be set together")
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.NewPCG(seed, 0x9e3779b97f4a7c15)
	}
	now := cfg.Clock.Now()
	s := &Server{
		cfg: cfg, log: log, clock: cfg.Clock,
		models: map[string]*modelState{}, faults: newFaultSet(cfg.Rand),
		signer: v4.NewSigner(), matcher: newMatcher(lexiconTerms()),
		rejects:  rejects{byCode: map[string]int64{}, since: now},
		idPrefix: fmt.Sprintf("%08x", uint32(seed)),
	}
	for i, m := range cfg.Models {
		if m.ID == "" {
			return nil, fmt.Errorf("bedrocksim: model %d has no id", i)
		}
		if _, dup := s.models[m.ID]; dup {
			return nil, fmt.Errorf("bedrocksim: model %q is listed twice", m.ID)
		}
		m = m.withDefaults()
		s.models[m.ID] = &modelState{Model: m, lim: newLimiter(m, now), stats: newModelCounters()}
		s.order = append(s.order, m.ID)
	}
	for id, f := range cfg.Faults {
		if err := s.SetFaults(id, f); err != nil {
			return nil, fmt.Errorf("bedrocksim: %w", err)
		}
	}
	return s, nil
}

// Models returns the catalogue with defaults applied, in configured order.
func (s *Server) Models() []Model {
	out := make([]Model, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.models[id].Model)
	}
	return out
}

// SetFaults replaces the faults of modelID ("*" for every model without
// faults of its own). A storm in f is scheduled relative to now.
func (s *Server) SetFaults(modelID string, f Faults) error {
	if _, ok := s.models[modelID]; !ok && modelID != "*" {
		return fmt.Errorf("set faults: unknown model %q", modelID)
	}
	if err := s.faults.set(modelID, f, s.clock.Now()); err != nil {
		return fmt.Errorf("set faults: %w", err)
	}
	s.log.Info().Str("model", modelID).Interface("faults", f).Msg("bedrocksim faults set")
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{Models: make(map[string]ModelStats, len(s.order))}
	for _, id := range s.order {
		st.Models[id] = s.models[id].stats.snapshot()
	}
	s.rejects.mu.Lock()
	st.Since = s.rejects.since
	st.Rejected = make(map[string]int64, len(s.rejects.byCode))
	for k, v := range s.rejects.byCode {
		st.Rejected[k] = v
	}
	s.rejects.mu.Unlock()
	return st
}

// Requests returns the last model calls received, oldest first (at most
// 100, long texts cut).
func (s *Server) Requests() []LoggedRequest { return s.requests.snapshot() }

// Reset zeroes the counters, empties the request log and refills every
// quota bucket.
func (s *Server) Reset() {
	s.requests.clear()
	now := s.clock.Now()
	for _, id := range s.order {
		s.models[id].stats.reset()
		s.models[id].lim.reset(now)
	}
	s.rejects.mu.Lock()
	clear(s.rejects.byCode)
	s.rejects.since = now
	s.rejects.mu.Unlock()
}

// ServeHTTP serves the Bedrock Runtime API under /model/, the admin API
// under /_sim/ and GET /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq := s.reqSeq.Add(1)
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("%s-%04x-4000-8000-%012x", s.idPrefix, (seq>>48)&0xffff, seq&0xffffffffffff))
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/model/"):
		s.handleModel(w, r)
	case path == "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case strings.HasPrefix(path, "/_sim/"):
		s.handleAdmin(w, r)
	default:
		s.reject(w, errAuth(404, "UnknownOperationException", "Unknown operation "+r.Method+" "+path))
	}
}

func (s *Server) reject(w http.ResponseWriter, e *apiError) {
	s.rejects.add(e.Code)
	writeError(w, e)
}

// handleAdmin serves the simulator's own endpoints:
//
//	GET    /_sim/stats   Stats as JSON
//	POST   /_sim/reset   zero the stats and refill the quotas
//	GET    /_sim/faults  the fault settings, by model id
//	POST   /_sim/faults  set faults: {"<model id or *>": Faults, ...}
//	DELETE /_sim/faults  remove every fault
//	GET    /_sim/models  the model catalogue
//	GET    /_sim/requests   the last model calls received (Requests)
//	DELETE /_sim/requests   empty that log
func (s *Server) handleAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.Method + " " + r.URL.Path {
	case "GET /_sim/stats":
		writeJSON(w, http.StatusOK, s.Stats())
	case "POST /_sim/reset":
		s.Reset()
		writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
	case "GET /_sim/faults":
		writeJSON(w, http.StatusOK, s.faults.snapshot())
	case "POST /_sim/faults":
		raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "read body: " + err.Error()})
			return
		}
		plan, err := decodeFaults(raw)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": `want {"<model id or *>": {"throttle": 0.1, ...}}: ` + err.Error()})
			return
		}
		keys := make([]string, 0, len(plan))
		for k := range plan {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if err := s.SetFaults(k, plan[k]); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, s.faults.snapshot())
	case "DELETE /_sim/faults":
		s.faults.clear()
		s.log.Info().Msg("bedrocksim faults cleared")
		writeJSON(w, http.StatusOK, map[string]Faults{})
	case "GET /_sim/requests":
		writeJSON(w, http.StatusOK, s.Requests())
	case "DELETE /_sim/requests":
		s.requests.clear()
		writeJSON(w, http.StatusOK, []LoggedRequest{})
	case "GET /_sim/models":
		writeJSON(w, http.StatusOK, s.Models())
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "unknown admin endpoint " + r.Method + " " + r.URL.Path})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"message":"marshal response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
