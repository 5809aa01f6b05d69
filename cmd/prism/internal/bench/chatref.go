package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/chat"
	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// ChatReferenceResult is the simulator's own time to first token: the
// chats' conversations sent to it again directly, through the
// bedrockruntime client, at the chats' concurrency.
type ChatReferenceResult struct {
	Calls       int    `json:"calls"`
	Concurrency int    `json:"concurrency"`
	Model       string `json:"model"`
	Failed      int    `json:"failed"`
	FirstError  string `json:"first_error,omitempty"`
	// FirstToken is from calling ConverseStream to its first text delta;
	// Answer to the end of its stream.
	FirstToken Summary `json:"first_token"`
	Answer     Summary `json:"answer"`
}

// ChatReference sends every question of the conversations in tr to the
// first model of the analyzer's chain as the answerer frames it (system
// prompt, the earlier turns within the history budget, the question as a
// free session's user turn, the answer's output budget), one worker per
// chat asking its questions in order.
func ChatReference(ctx context.Context, sim router.Streamer, cfg analyzer.Config, tr transcript) ChatReferenceResult {
	m := cfg.Chain[0]
	maxOut := min(cfg.Chat.MaxOutputTokens, m.MaxOutputTokens)
	res := ChatReferenceResult{Concurrency: len(tr.convs), Model: m.ID}
	var first, whole Latencies
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for _, conv := range tr.convs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, x := range conv {
				calls.Add(1)
				in := chatInput(m, maxOut, cfg.Chat.HistoryTokens, cfg.Chain, conv[:k], x.question)
				ft, total, err := timeStream(ctx, sim, in)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				first.Add(ft)
				whole.Add(total)
			}
		}()
	}
	wg.Wait()
	res.Calls, res.Failed = int(calls.Load()), int(failed.Load())
	res.FirstToken, res.Answer = first.Summary(), whole.Summary()
	if err, _ := firstErr.Load().(error); err != nil {
		res.FirstError = err.Error()
	}
	return res
}

// messageOverhead is what the answerer counts for one message besides its
// text (analyzer/chat), for the history budget.
const messageOverhead = 8

// chatInput is the request the answerer makes for question after the
// exchanges before it in a free session with no documents: the earlier
// answers that ended with text are the history (chat.Turns), fitted to the
// budget as the answerer fits them.
func chatInput(m router.Model, maxOut, historyTokens int, chain router.Chain, before []exchange, question string) *bedrockruntime.ConverseStreamInput {
	var turns []chat.Turn
	for _, x := range before {
		if (x.status == streams.MessageComplete || x.status == streams.MessageIncomplete) && x.answer != "" {
			turns = append(turns, chat.Turn{Question: x.question, Answer: x.answer, Incomplete: x.status == streams.MessageIncomplete})
		}
	}
	user := prompt.ChatUser(question, prompt.Material{}, prompt.Nonce())
	turn := router.EstimateTokens(prompt.ChatSystem) + router.EstimateTokens(user) + messageOverhead
	kept, dropped := chat.Fit(turns, chat.HistoryBudget(historyTokens, chain, maxOut, turn))
	return &bedrockruntime.ConverseStreamInput{
		ModelId:         aws.String(m.ID),
		System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: prompt.ChatSystem}},
		Messages:        chat.Messages(kept, dropped, user),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(maxOut))},
	}
}

// timeStream calls ConverseStream and reads the answer to its end: the
// time to the first text delta and to the end.
func timeStream(ctx context.Context, sim router.Streamer, in *bedrockruntime.ConverseStreamInput) (first, total time.Duration, err error) {
	start := time.Now()
	out, err := sim.ConverseStream(ctx, in, router.OwnEventCodec)
	if err != nil {
		return 0, 0, fmt.Errorf("reference call: %w", err)
	}
	es := out.GetStream()
	defer es.Close()
	stopped := false
	for ev := range es.Events() {
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			if d, ok := v.Value.Delta.(*types.ContentBlockDeltaMemberText); ok && d.Value != "" && first == 0 {
				first = time.Since(start)
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			stopped = true
		}
	}
	total = time.Since(start)
	if err := es.Err(); err != nil {
		return 0, 0, fmt.Errorf("reference stream: %w", err)
	}
	if !stopped || first == 0 {
		return 0, 0, errors.New("reference stream: ended without text or without its messageStop")
	}
	return first, total, nil
}
