package router_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// streamRequest is chatRequest with room for the simulator's whole answer
// (a few hundred bytes, many deltas), or maxOut tokens of it.
func streamRequest(maxOut int) router.Request {
	req := chatRequest(true)
	req.MaxOutputTokens = maxOut
	return req
}

// deltas collects what ConverseStream gives onText.
type deltas []string

func (d *deltas) onText(s string) error {
	*d = append(*d, s)
	return nil
}

func (d deltas) text() string { return strings.Join(d, "") }

// answerOf is the simulator's whole answer to req, through Converse.
func answerOf(t *testing.T, r *router.Router, req router.Request) string {
	t.Helper()
	res, err := r.Converse(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	msg := res.Output.Output.(*types.ConverseOutputMemberMessage).Value
	return msg.Content[0].(*types.ContentBlockMemberText).Value
}

// The answer arrives delta by delta, in order, and the deltas make up the
// simulator's answer; usage is the simulator's and the cost follows it.
func TestConverseStreamDeliversDeltasInOrder(t *testing.T) {
	w, r, _, reg := twoModels(t, bedrocksim.Faults{})
	req := streamRequest(1024)
	counted := req.InputTokens // what the simulator will count
	req.InputTokens += 50      // our estimate errs high, as with real tokenizers
	var got deltas
	res, err := r.ConverseStream(context.Background(), req, got.onText)
	if err != nil {
		t.Fatal(err)
	}
	want := answerOf(t, r, req)
	if got.text() != want || res.Text != want {
		t.Fatalf("deltas make up\n%q\nand Text is\n%q\nwant the simulator's answer\n%q", got.text(), res.Text, want)
	}
	if len(got) < 5 {
		t.Fatalf("%d deltas for a %d-byte answer; want it streamed in pieces", len(got), len(want))
	}
	if res.Model.ID != "model-a" || len(res.Attempts) != 1 || res.Attempts[0].Outcome != "ok" || res.StopReason != "end_turn" {
		t.Fatalf("served by %s after %+v, stop %q; want model-a at once, end_turn", res.Model.ID, res.Attempts, res.StopReason)
	}
	sim := w.stats().Models["model-a"]
	if res.InputTokens != counted || res.OutputTokens != router.EstimateTokens(want) || int64(res.OutputTokens) != sim.OutputTokens/2 {
		t.Fatalf("tokens %d in, %d out; want the simulator's report: %d in and %d out (half its %d, after two calls)",
			res.InputTokens, res.OutputTokens, counted, router.EstimateTokens(want), sim.OutputTokens)
	}
	if res.CostUSD <= 0 || res.CostUSD != res.Model.Cost(res.InputTokens, res.OutputTokens) {
		t.Fatalf("cost %v, want the model's price of its tokens, %v", res.CostUSD, res.Model.Cost(res.InputTokens, res.OutputTokens))
	}
	if res.FirstToken <= 0 {
		t.Fatalf("time to first token %v", res.FirstToken)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := metricValue(fams, "prism_model_output_tokens_total", map[string]string{"model": "model-a"}); v != float64(2*res.OutputTokens) {
		t.Fatalf("output tokens counted %v, want %d (the stream's and the Converse's)", v, 2*res.OutputTokens)
	}
}

// A throttle before the first delta, as the call's response or as the
// stream's first exception, falls back to the next model; onText gets that
// model's answer and nothing of the first.
func TestConverseStreamFallsBackBeforeTheFirstToken(t *testing.T) {
	for _, c := range []struct {
		name    string
		faults  bedrocksim.Faults
		maxOut  int // 5 tokens: the answer is one delta, which the exception comes before
		outcome string
	}{
		{"throttle", bedrocksim.Faults{Throttle: 1}, 1024, "throttled"},
		// The stream starts (200, messageStart), then the exception.
		{"throttling exception before any delta", bedrocksim.Faults{MidStream: 1}, 5, "throttled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, r, _, _ := twoModels(t, c.faults)
			req := streamRequest(c.maxOut)
			var got deltas
			res, err := r.ConverseStream(context.Background(), req, got.onText)
			if err != nil {
				t.Fatal(err)
			}
			if res.Model.ID != "model-b" || len(res.Attempts) != 2 || res.Attempts[0].Outcome != c.outcome || res.Attempts[1].Outcome != "ok" {
				t.Fatalf("served by %s after %+v; want model-b after model-a %s", res.Model.ID, res.Attempts, c.outcome)
			}
			if n := w.stats().Models["model-a"].Requests; n != 1 {
				t.Fatalf("model-a received %d requests, want 1", n)
			}
			if want := answerOf(t, r, router.Request{Interactive: true, InputTokens: req.InputTokens, MaxOutputTokens: c.maxOut, Build: req.Build,
				Models: func(m router.Model) bool { return m.ID == "model-b" }}); got.text() != want || res.Text != want {
				t.Fatalf("onText got %q (Text %q); want exactly model-b's answer %q", got.text(), res.Text, want)
			}
		})
	}
}

// After the first delta the answer belongs to its model: an exception
// mid-stream returns the text so far with an InterruptedError, tokens
// and cost estimated, and no other model is tried. The mid-stream
// throttle cools the model, but its request stays counted: Bedrock took it.
func TestConverseStreamInterruptedAfterTheFirstToken(t *testing.T) {
	w, r, shared, _ := twoModels(t, bedrocksim.Faults{MidStream: 1})
	req := streamRequest(1024)
	var got deltas
	res, err := r.ConverseStream(context.Background(), req, got.onText)
	var interrupted *router.InterruptedError
	var throttle *types.ThrottlingException
	if !errors.As(err, &interrupted) || !errors.As(err, &throttle) {
		t.Fatalf("err = %v, want an *InterruptedError wrapping the ThrottlingException", err)
	}
	if res == nil || res.Model.ID != "model-a" || len(interrupted.Attempts) != 1 || interrupted.Attempts[0].Outcome != "interrupted" {
		t.Fatalf("result %+v, attempts %+v; want model-a's partial answer, one attempt, interrupted", res, interrupted.Attempts)
	}
	if n := w.stats().Models["model-b"].Requests; n != 0 {
		t.Fatalf("model-b received %d requests after the answer had started", n)
	}
	snap, err := shared.Snapshot(context.Background(), r.Chain()[0])
	if err != nil {
		t.Fatal(err)
	}
	if left := int(100*snap.Scale) - 1; snap.CoolingFor <= 0 || snap.Requests != left {
		t.Fatalf("model-a cools for %v with %d requests left; want cooling, and its request counted (%d left)", snap.CoolingFor, snap.Requests, left)
	}
	want := answerOf(t, r, req) // from model-b, model-a cooling: the same text
	if len(got) == 0 || got.text() != res.Text || len(res.Text) >= len(want) || !strings.HasPrefix(want, res.Text) {
		t.Fatalf("partial text %q (onText got %q); want a proper prefix of %q", res.Text, got.text(), want)
	}
	if res.InputTokens != req.InputTokens || res.OutputTokens != router.EstimateTokens(res.Text) || res.CostUSD != res.Model.Cost(res.InputTokens, res.OutputTokens) || res.StopReason != "" {
		t.Fatalf("tokens %d/%d cost %v stop %q; want the estimates %d/%d priced, no stop reason",
			res.InputTokens, res.OutputTokens, res.CostUSD, res.StopReason, req.InputTokens, router.EstimateTokens(res.Text))
	}
}

// A connection cut mid-stream, without an exception (the SDK reports a
// clean end), is an interruption too: the missing messageStop tells. The
// model is not cooled for it.
func TestConverseStreamInterruptedByACutConnection(t *testing.T) {
	w, r, shared, _ := twoModels(t, bedrocksim.Faults{MidStream: 1, MidStreamCut: true})
	var got deltas
	res, err := r.ConverseStream(context.Background(), streamRequest(1024), got.onText)
	var interrupted *router.InterruptedError
	if !errors.As(err, &interrupted) || res == nil || res.Model.ID != "model-a" || res.Text == "" || res.Text != got.text() {
		t.Fatalf("err = %v, result %+v; want model-a's partial answer with an *InterruptedError", err, res)
	}
	if interrupted.Attempts[0].Outcome != "interrupted" || w.stats().Models["model-b"].Requests != 0 {
		t.Fatalf("attempts %+v, model-b called %d times", interrupted.Attempts, w.stats().Models["model-b"].Requests)
	}
	if snap, err := shared.Snapshot(context.Background(), r.Chain()[0]); err != nil || snap.CoolingFor != 0 {
		t.Fatalf("model-a cools for %v (%v) after a cut connection", snap.CoolingFor, err)
	}
}

// An error from onText stops the stream: it is returned wrapped with what
// was delivered, and no other model is tried.
func TestConverseStreamStopsWhenTheReaderGivesUp(t *testing.T) {
	w, r, _, _ := twoModels(t, bedrocksim.Faults{})
	gone := errors.New("the client went away")
	var got deltas
	res, err := r.ConverseStream(context.Background(), streamRequest(1024), func(s string) error {
		_ = got.onText(s)
		return gone
	})
	var interrupted *router.InterruptedError
	if !errors.Is(err, gone) || errors.As(err, &interrupted) {
		t.Fatalf("err = %v, want the reader's error wrapped, not an interruption", err)
	}
	if len(got) != 1 || res == nil || res.Text != got[0] || res.Attempts[0].Outcome != "stopped" {
		t.Fatalf("onText called %d times, result %+v; want one delta, kept in Text, attempt stopped", len(got), res)
	}
	if n := w.stats().Models["model-b"].Requests; n != 0 {
		t.Fatalf("model-b received %d requests", n)
	}
}

// The request's inference configuration reaches ConverseStream: the
// simulator stops at the request's 8-token limit.
func TestConverseStreamHonoursTheOutputLimit(t *testing.T) {
	_, r, _, _ := twoModels(t, bedrocksim.Faults{})
	var got deltas
	res, err := r.ConverseStream(context.Background(), streamRequest(8), got.onText)
	if err != nil {
		t.Fatal(err)
	}
	if res.StopReason != "max_tokens" || res.OutputTokens != 8 || len(got.text()) != 8*4 {
		t.Fatalf("stop %q, %d tokens, %q: want the 8-token limit of the request honoured", res.StopReason, res.OutputTokens, got.text())
	}
}

// Streams at once on one router (one bedrockruntime client), as the
// answerer runs its chats: each gets its whole answer, and under the race
// detector they share no decoding state.
func TestConcurrentStreams(t *testing.T) {
	_, r, _, _ := twoModels(t, bedrocksim.Faults{})
	req := streamRequest(1024)
	want := answerOf(t, r, req)
	const streams = 8
	texts := make([]deltas, streams)
	errs := make([]error, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = r.ConverseStream(context.Background(), req, texts[i].onText)
		}()
	}
	wg.Wait()
	for i := range streams {
		if errs[i] != nil || texts[i].text() != want {
			t.Errorf("stream %d: %v, text\n%q\nwant\n%q", i, errs[i], texts[i].text(), want)
		}
	}
}
