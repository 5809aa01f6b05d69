package bench

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	// The extractor of a benchmark system re-executes this binary as its
	// sandboxed worker.
	system.ServeWorkerIfAsked()
	testenv.Main(m)
}

// The chat scenario at a tiny size through a real system: every question
// is answered, delta by delta, the figures are sane, and the reference
// sends the simulator the very requests the answerer sent.
func TestChatScenario(t *testing.T) {
	const chats, questions, speed = 2, 3, 0.02
	o := Options{Scenario: ScenarioChat, InProcess: true, Chats: chats, ChatQuestions: questions, ChatSpeed: speed,
		DatabaseURL: testenv.Postgres(t), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}.Defaults()
	env, cleanup, err := benchEnv(o, o.ChatSpeed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res ChatResult
	var logged []bedrocksim.LoggedRequest
	var firstTokenMS float64
	_, _, err = withSystem(ctx, o, partChat, env, func(s *benchSystem) error {
		firstTokenMS = speed * float64(s.dev.Sim.Models()[0].TimeToFirstTokenMs)
		var err error
		res, err = chatScenario(ctx, o, s)
		logged = s.dev.Sim.Requests()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	n := chats * questions
	if res.Asked != n || res.Answered != n || res.Failed+res.Missing+res.Refused+res.NotAsked+res.Garbled != 0 {
		t.Fatalf("%d asked, %d answered, %d failed, %d missing, %d refused, %d not asked, %d garbled (%s); want all %d answered",
			res.Asked, res.Answered, res.Failed, res.Missing, res.Refused, res.NotAsked, res.Garbled, res.FirstError, n)
	}
	ref := res.Reference
	if ref.Calls != n || ref.Failed != 0 || ref.Concurrency != chats {
		t.Errorf("reference: %d calls (%d failed: %s) by %d, want %d by %d", ref.Calls, ref.Failed, ref.FirstError, ref.Concurrency, n, chats)
	}
	for name, s := range map[string]Summary{"first token": res.FirstToken, "answer": res.Answer, "reference first token": ref.FirstToken, "reference answer": ref.Answer} {
		// Nothing comes before the simulator's time to first token, nor
		// takes minutes.
		if s.Count != n || s.P50 < firstTokenMS || s.P50 > s.P90 || s.P90 > s.P99 || s.P99 > s.Max || s.Max > 30_000 {
			t.Errorf("%s: %+v, want %d times from %.0f ms, in order", name, s, n, firstTokenMS)
		}
	}
	if res.FirstToken.Max >= res.Answer.Max || ref.FirstToken.Max >= ref.Answer.Max {
		t.Errorf("first tokens %+v / %+v come no earlier than whole answers %+v / %+v", res.FirstToken, ref.FirstToken, res.Answer, ref.Answer)
	}
	if res.Added != addedBetween(res.FirstToken, ref.FirstToken) {
		t.Errorf("added %+v, want the pipeline's first token minus the reference's", res.Added)
	}
	for _, stage := range []string{"ask", "answer", "deliver"} {
		if s := res.Stages[stage]; s.Count != n {
			t.Errorf("stage %s: %+v, want %d times", stage, s, n)
		}
	}
	if res.Ramp != 3*speed {
		t.Errorf("first questions spread over %g s, want 3 s at the speed", res.Ramp)
	}
	if res.AnswersPerSec <= 0 || res.Seconds <= 0 {
		t.Errorf("%.1f answers/s in %.1f s", res.AnswersPerSec, res.Seconds)
	}

	// The simulator logged the answerer's requests, then the reference's:
	// the same requests, question for question (a free session's user turn
	// holds no nonce).
	if len(logged) != 2*n {
		t.Fatalf("the simulator logged %d requests, want %d", len(logged), 2*n)
	}
	key := func(r bedrocksim.LoggedRequest) string {
		return fmt.Sprintf("%s|%s|%d|%d|%d|%s", r.Operation, r.Model, r.Messages, r.InputTokens, r.MaxTokens, r.User)
	}
	var pipeline, reference []string
	for i, r := range logged {
		if r.System != prompt.ChatSystem {
			t.Errorf("request %d: system prompt %q, want the chat's", i, r.System)
		}
		if i < n {
			pipeline = append(pipeline, key(r))
		} else {
			reference = append(reference, key(r))
		}
	}
	slices.Sort(pipeline)
	slices.Sort(reference)
	if !slices.Equal(pipeline, reference) {
		t.Errorf("the reference's requests differ from the answerer's:\n%s\nwant\n%s", strings.Join(reference, "\n"), strings.Join(pipeline, "\n"))
	}
	if !strings.Contains(pipeline[len(pipeline)-1], fmt.Sprintf("|%d|", 2*questions-1)) {
		t.Errorf("no request carried the history of %d questions: %s", questions-1, strings.Join(pipeline, "\n"))
	}

	var out bytes.Buffer
	(&Report{Scenario: ScenarioChat, Chat: &res}).Print(&out)
	for _, want := range []string{"chat: time to first token", "simulator alone: first token", "chat: added first token", "difference of two distributions", fmt.Sprintf("%d answered, 0 failed, 0 missing", n)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "pipeline: documents") {
		t.Errorf("the chat scenario's table shows the documents scenarios:\n%s", out.String())
	}
}
