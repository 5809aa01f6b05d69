package bedrocksim

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// chunks splits s into pieces of about size bytes on rune boundaries,
// preferring to cut after a space, as a model's deltas arrive.
func chunks(s string, size int) []string {
	var out []string
	for len(s) > 0 {
		n := min(size, len(s))
		for n < len(s) && !utf8.RuneStart(s[n]) {
			n++
		}
		if n < len(s) {
			if k := strings.LastIndexByte(s[:n], ' '); k > size/2 {
				n = k + 1
			}
		}
		out = append(out, s[:n])
		s = s[n:]
	}
	return out
}

// stream writes a streaming answer, paced by the latency model. mid, when
// set, cuts the stream halfway with that exception.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, x *exchange, mid *apiError) (*apiError, bool) {
	m := x.ms
	out, size := x.rep.text, 24
	if x.rep.toolInput != nil {
		out, size = string(x.rep.toolInput), 96
	}
	parts := chunks(out, size)
	firstByte := time.Now().Add(s.scale(time.Duration(m.TimeToFirstTokenMs) * time.Millisecond))
	if err := sleep(ctx, time.Until(firstByte)); err != nil {
		return errCanceled, false
	}
	h := w.Header()
	h.Set("Content-Type", EventStreamContentType)
	if x.op == "invoke-with-response-stream" {
		h.Set("X-Amzn-Bedrock-Content-Type", "application/json")
	}
	w.WriteHeader(http.StatusOK)
	fw := newFrameWriter(w)
	ev := newStreamEvents(x, fw)
	if err := ev.start(); err != nil {
		return errCanceled, true
	}
	cut := -1
	if mid != nil {
		cut = len(parts) / 2
	}
	sent := 0
	for i, p := range parts {
		if i == cut {
			x.rep.outputTokens = EstimateTokens(out[:sent])
			return interrupt(fw, mid)
		}
		sent += len(p)
		if err := sleep(ctx, time.Until(firstByte.Add(s.scale(tokenTime(m, EstimateTokens(out[:sent])))))); err != nil {
			x.rep.outputTokens = EstimateTokens(out[:sent])
			return errCanceled, true
		}
		if err := ev.delta(p); err != nil {
			x.rep.outputTokens = EstimateTokens(out[:sent])
			return errCanceled, true
		}
	}
	if mid != nil { // an empty answer still gets its exception
		return interrupt(fw, mid)
	}
	if err := ev.stop(time.Since(x.began), firstByte.Sub(x.began)); err != nil {
		return errCanceled, true
	}
	return nil, true
}

// interrupt ends a stream with mid: its exception frame, or nothing for a
// cut connection, which the handler then drops.
func interrupt(fw *frameWriter, mid *apiError) (*apiError, bool) {
	if mid.Code != codeConnectionCut {
		_ = fw.exception(mid)
	}
	return mid, true
}

// streamEvents writes the events of one streamed answer in the shape of
// the operation: Converse events, or Anthropic events wrapped in chunks.
type streamEvents struct {
	x      *exchange
	fw     *frameWriter
	invoke bool
	tool   bool
}

func newStreamEvents(x *exchange, fw *frameWriter) *streamEvents {
	return &streamEvents{x: x, fw: fw, invoke: x.op == "invoke-with-response-stream", tool: x.rep.toolInput != nil}
}

type obj = map[string]any

func (e *streamEvents) start() error {
	x := e.x
	if !e.invoke {
		if err := e.fw.event("messageStart", obj{"role": "assistant"}); err != nil {
			return err
		}
		if e.tool {
			return e.fw.event("contentBlockStart", obj{"contentBlockIndex": 0,
				"start": obj{"toolUse": obj{"toolUseId": x.rep.toolID, "name": x.rep.toolName}}})
		}
		return nil
	}
	msg := x.anthropicMessage([]anOutBlock{}, nil, 1)
	if err := e.fw.chunk(obj{"type": "message_start", "message": msg}); err != nil {
		return err
	}
	block := obj{"type": "text", "text": ""}
	if e.tool {
		block = obj{"type": "tool_use", "id": "toolu_bdrk_" + x.rep.id, "name": x.rep.toolName, "input": obj{}}
	}
	return e.fw.chunk(obj{"type": "content_block_start", "index": 0, "content_block": block})
}

func (e *streamEvents) delta(p string) error {
	switch {
	case !e.invoke && e.tool:
		return e.fw.event("contentBlockDelta", obj{"contentBlockIndex": 0, "delta": obj{"toolUse": obj{"input": p}}})
	case !e.invoke:
		return e.fw.event("contentBlockDelta", obj{"contentBlockIndex": 0, "delta": obj{"text": p}})
	case e.tool:
		return e.fw.chunk(obj{"type": "content_block_delta", "index": 0, "delta": obj{"type": "input_json_delta", "partial_json": p}})
	default:
		return e.fw.chunk(obj{"type": "content_block_delta", "index": 0, "delta": obj{"type": "text_delta", "text": p}})
	}
}

func (e *streamEvents) stop(took, firstByte time.Duration) error {
	x := e.x
	var events []obj
	if !e.invoke {
		for _, ev := range []struct {
			typ string
			v   any
		}{
			{"contentBlockStop", obj{"contentBlockIndex": 0}},
			{"messageStop", obj{"stopReason": x.rep.stopReason}},
			{"metadata", obj{"usage": x.usage(), "metrics": metrics{took.Milliseconds()}}},
		} {
			if err := e.fw.event(ev.typ, ev.v); err != nil {
				return err
			}
		}
		return nil
	}
	events = append(events,
		obj{"type": "content_block_stop", "index": 0},
		obj{"type": "message_delta", "delta": obj{"stop_reason": x.rep.stopReason, "stop_sequence": nil},
			"usage": obj{"output_tokens": x.rep.outputTokens}},
		obj{"type": "message_stop", "amazon-bedrock-invocationMetrics": obj{
			"inputTokenCount": x.p.inputTokens, "outputTokenCount": x.rep.outputTokens,
			"invocationLatency": took.Milliseconds(), "firstByteLatency": firstByte.Milliseconds()}})
	for _, ev := range events {
		if err := e.fw.chunk(ev); err != nil {
			return err
		}
	}
	return nil
}
