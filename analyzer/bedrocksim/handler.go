package bedrocksim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxBody is the largest request body accepted.
const maxBody = 20 << 20

// defaultMaxTokens is the output limit assumed when a Converse request sets
// none (capped by the model's own limit).
const defaultMaxTokens = 4096

var operations = map[string]bool{"converse": true, "converse-stream": true, "invoke": true, "invoke-with-response-stream": true}

// errCanceled marks a request the client abandoned; it is only counted.
var errCanceled = &apiError{Status: 499, Code: "ClientCanceled", Message: "client went away"}

// exchange is one model call in progress.
type exchange struct {
	ms       *modelState
	op       string
	began    time.Time // real time, for latency metrics
	p        prompt
	maxTok   int
	reserved int
	rep      reply
}

// handleModel serves POST /model/{modelId}/{operation}.
func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.reject(w, errValidation("Unable to read the request body: "+err.Error()))
		return
	}
	if e := s.authenticate(r, body); e != nil {
		s.reject(w, e)
		return
	}
	id, op, ok := splitModelPath(r.URL.EscapedPath())
	if !ok || r.Method != http.MethodPost || !operations[op] {
		s.reject(w, errAuth(404, "UnknownOperationException", "Unknown operation "+r.Method+" "+r.URL.Path))
		return
	}
	ms := s.lookup(id)
	if ms == nil {
		s.reject(w, errNotFound(msgUnknownModel))
		return
	}
	ms.stats.start(s.clock.Now())
	x := &exchange{ms: ms, op: op, began: began}
	e, written := s.call(r.Context(), w, x, body)
	if e != nil && !written && e != errCanceled {
		writeError(w, e)
	}
	out := 0
	if e == nil || written {
		out = x.rep.outputTokens
	}
	in := 0
	if x.reserved > 0 {
		in = x.p.inputTokens
	}
	ms.stats.finish(s.clock.Now(), e, in, out)
	outcome := "ok"
	if e != nil {
		outcome = e.Code
	}
	s.requests.add(LoggedRequest{At: s.clock.Now(), Model: ms.ID, Operation: op, System: x.p.system, User: x.p.lastUser, Messages: x.p.messages,
		ForcedTool: x.p.forcedTool, InputTokens: x.p.inputTokens, MaxTokens: x.p.maxTokens, OutputTokens: out, Outcome: outcome})
	ev := s.log.Debug().Str("model", ms.ID).Str("op", op).Dur("took", time.Since(began)).Int("in", in).Int("out", out)
	if e != nil {
		ev = ev.Str("error", e.Code)
	}
	ev.Msg("bedrocksim call")
	if e != nil && e.Code == codeConnectionCut {
		panic(http.ErrAbortHandler) // drop the connection, unfinished
	}
}

// splitModelPath splits "/model/{id}/{op}" (id still escaped) into the
// unescaped id and the operation.
func splitModelPath(escaped string) (id, op string, ok bool) {
	rest, ok := strings.CutPrefix(escaped, "/model/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i <= 0 {
		return "", "", false
	}
	id, err := url.PathUnescape(rest[:i])
	return id, rest[i+1:], err == nil
}

// lookup finds a model by id, or by the id at the end of a foundation-model
// or inference-profile ARN.
func (s *Server) lookup(id string) *modelState {
	if ms, ok := s.models[id]; ok {
		return ms
	}
	if strings.HasPrefix(id, "arn:") {
		if i := strings.LastIndexByte(id, '/'); i >= 0 {
			return s.models[id[i+1:]]
		}
	}
	return nil
}

// call runs one model call. It returns the error the call ended with (nil
// on success) and whether a response has already been written.
func (s *Server) call(ctx context.Context, w http.ResponseWriter, x *exchange, body []byte) (*apiError, bool) {
	m := x.ms
	if m.AccessDenied {
		return errAccessDenied(), false
	}
	var e *apiError
	if strings.HasPrefix(x.op, "converse") {
		x.p, e = parseConverse(body)
	} else {
		x.p, e = parseAnthropic(body)
	}
	if e != nil {
		return e, false
	}
	x.maxTok = x.p.maxTokens
	if x.maxTok == 0 {
		x.maxTok = min(defaultMaxTokens, m.MaxOutputTokens)
	}
	switch {
	case x.p.inputTokens > m.ContextWindow:
		return errValidation(msgInputTooLong), false
	case x.maxTok > m.MaxOutputTokens:
		return errValidation(fmt.Sprintf("The maximum tokens you requested exceeds the model limit of %d. Try again with a maximum tokens value of at most %d.", m.MaxOutputTokens, m.MaxOutputTokens)), false
	case x.p.inputTokens+x.maxTok > m.ContextWindow:
		return errValidation(fmt.Sprintf("input length and `max_tokens` exceed context limit: %d + %d > %d, decrease input length or `max_tokens` and try again", x.p.inputTokens, x.maxTok, m.ContextWindow)), false
	}

	d := s.faults.decide(m.ID, s.clock.Now())
	if d.err != nil {
		if d.err.Code == "ModelTimeoutException" {
			x.rep = s.compose(&x.p, x.maxTok, d.obedient)
			if err := sleep(ctx, s.latency(m, x.rep.outputTokens)); err != nil {
				return errCanceled, false
			}
		}
		return d.err, false
	}

	x.reserved = x.p.inputTokens + m.OutputBurndown*x.maxTok
	if e := m.lim.reserve(s.clock.Now(), x.reserved); e != nil {
		x.reserved = 0
		return e, false
	}
	x.rep = s.compose(&x.p, x.maxTok, d.obedient)
	streamed := x.op == "converse-stream" || x.op == "invoke-with-response-stream"
	var written bool
	if streamed {
		e, written = s.stream(ctx, w, x, d.midStream)
	} else {
		if err := sleep(ctx, s.latency(m, x.rep.outputTokens)); err != nil {
			e = errCanceled
		} else if x.op == "converse" {
			s.writeConverse(w, x)
		} else {
			s.writeInvoke(w, x)
		}
	}
	used := x.p.inputTokens
	if e == nil || written {
		used += m.OutputBurndown * x.rep.outputTokens
	}
	m.lim.settle(s.clock.Now(), x.reserved, used)
	return e, written
}

// latency is the simulated time to produce out tokens on m, scaled by Speed.
func (s *Server) latency(m *modelState, out int) time.Duration {
	return s.scale(time.Duration(m.TimeToFirstTokenMs)*time.Millisecond + tokenTime(m, out))
}

func tokenTime(m *modelState, n int) time.Duration {
	return time.Duration(float64(n) / m.TokensPerSecond * float64(time.Second))
}

func (s *Server) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.Speed)
}

// sleep waits for d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
