package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"
)

// errStreamEnded: the event stream closed without an error and without the
// model's messageStop, e.g. a connection cut between two events.
var errStreamEnded = errors.New("the answer's event stream ended before its messageStop")

// ConverseStream routes one request as Converse does (the same chain,
// reservations, priority, quotas, cooldowns, breakers, hop limit, deadline
// and errors) but streams the answer: onText gets each text delta, in
// order, as the model writes it.
//
// Until the first delta, a failure falls back to the next model silently:
// nothing has reached onText. After it, the answer belongs to that model: a
// stream that breaks returns the partial Result (the text so far, the
// estimated tokens and cost) with an *InterruptedError, and no other model
// is tried. An error from onText stops the stream and is returned wrapped,
// with the partial Result.
func (r *Router) ConverseStream(ctx context.Context, req Request, onText func(text string) error) (*Result, error) {
	began := time.Now()
	return r.route(ctx, req, func(ctx context.Context, m Model, maxOut int) called {
		return r.stream(ctx, streamInput(req.Build(m, maxOut)), req.InputTokens, began, onText)
	})
}

// stream makes one ConverseStream call and reads its events.
func (r *Router) stream(ctx context.Context, in *bedrockruntime.ConverseStreamInput, estimatedIn int, began time.Time, onText func(string) error) called {
	var c called
	out, err := r.client.ConverseStream(ctx, in, OwnEventCodec)
	if err != nil {
		c.err = err
		return c
	}
	es := out.GetStream()
	defer es.Close()
	var text strings.Builder
	reported, complete := false, false
	events := es.Events()
read:
	for {
		var ev types.ConverseStreamOutput
		var ok bool
		select {
		case ev, ok = <-events:
		case <-ctx.Done():
			c.err = ctx.Err()
			break read
		}
		if !ok {
			if c.err = es.Err(); c.err == nil && !complete {
				c.err = errStreamEnded
			}
			break
		}
		switch v := ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			d, isText := v.Value.Delta.(*types.ContentBlockDeltaMemberText)
			if !isText || d.Value == "" {
				continue // tool input or reasoning: not the chat's text
			}
			if !c.delivered {
				c.delivered, c.firstToken = true, time.Since(began)
			}
			text.WriteString(d.Value)
			if err := onText(d.Value); err != nil {
				c.err, c.stopped = err, true
				break read
			}
		case *types.ConverseStreamOutputMemberMessageStop:
			c.stop, complete = string(v.Value.StopReason), true
		case *types.ConverseStreamOutputMemberMetadata:
			if u := v.Value.Usage; u != nil {
				c.in, c.outTok, reported = int(aws.ToInt32(u.InputTokens)), int(aws.ToInt32(u.OutputTokens)), true
			}
		}
	}
	c.text = text.String()
	if c.err == nil && !reported {
		// Complete, but the usage never came: settle by our estimates.
		c.in, c.outTok = estimatedIn, EstimateTokens(c.text)
	}
	if c.err != nil && !c.delivered && !c.stopped {
		c.err = fmt.Errorf("stream: %w", c.err)
	}
	return c
}

// OwnEventCodec is an option of a ConverseStream call that gives the call
// an event stream codec of its own. smithy-go (v1.28.9) keeps one codec in
// each client's protocol, and every stream of the client decodes with it:
// concurrent streams of one client race on its state (the race detector
// sees it). A codec per call shares nothing; its cost is an allocation.
func OwnEventCodec(o *bedrockruntime.Options) { o.Protocol = restjson1.New(nil) }

// streamInput is the ConverseStream form of in, field by field, so that a
// request has one Build for both operations.
func streamInput(in *bedrockruntime.ConverseInput) *bedrockruntime.ConverseStreamInput {
	s := &bedrockruntime.ConverseStreamInput{
		ModelId:                           in.ModelId,
		AdditionalModelRequestFields:      in.AdditionalModelRequestFields,
		AdditionalModelResponseFieldPaths: in.AdditionalModelResponseFieldPaths,
		InferenceConfig:                   in.InferenceConfig,
		Messages:                          in.Messages,
		OutputConfig:                      in.OutputConfig,
		PerformanceConfig:                 in.PerformanceConfig,
		PromptVariables:                   in.PromptVariables,
		RequestMetadata:                   in.RequestMetadata,
		ServiceTier:                       in.ServiceTier,
		System:                            in.System,
		ToolConfig:                        in.ToolConfig,
	}
	if g := in.GuardrailConfig; g != nil {
		s.GuardrailConfig = &types.GuardrailStreamConfiguration{GuardrailIdentifier: g.GuardrailIdentifier, GuardrailVersion: g.GuardrailVersion, Trace: g.Trace}
	}
	return s
}
