// Package analyzer asks Bedrock for a risk assessment of each extracted
// document and publishes document.analyzed. The stage consumes
// document.extracted; the model call itself goes through a Caller so the
// model router can take the single-model path's place without touching the
// stage.
package analyzer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aiprism/prism/analyzer/assessment"
	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/rs/zerolog"
)

// Objects is the part of the claim-check store the analyzer needs.
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
}

// Converser is the Bedrock operation the analyzer uses.
type Converser interface {
	Converse(ctx context.Context, in *bedrockruntime.ConverseInput, optFns ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error)
}

// Model is one Bedrock model the analyzer may call.
type Model struct {
	ID              string
	ContextTokens   int
	MaxOutputTokens int
	PricePer1kIn    float64 // USD
	PricePer1kOut   float64 // USD
}

// Stage is the analyzer's event handler.
type Stage struct {
	objects  Objects
	client   Converser
	model    Model
	pub      *streams.Publisher
	maxChars int
	// busyDelay is how long a document waits when the model throttles.
	busyDelay time.Duration
}

// NewStage returns the analysis stage calling model through client.
func NewStage(objects Objects, client Converser, model Model, pub *streams.Publisher, maxChars int) *Stage {
	return &Stage{objects: objects, client: client, model: model, pub: pub, maxChars: maxChars, busyDelay: 5 * time.Second}
}

// Handle analyzes the document of one extracted event.
func (s *Stage) Handle(ctx context.Context, ev *streams.Event) error {
	var ex streams.ExtractedData
	if err := ev.Decode(&ex); err != nil {
		return streams.Permanent("bad-event", err)
	}
	m := streams.MetaOf(ev)
	if _, err := s.pub.Emit(ctx, m, streams.Progress, "analyze-started", streams.ProgressData{
		Stage: streams.StageAnalyze, Step: "started", Status: "analyzing",
	}); err != nil {
		return err
	}
	text, err := s.readText(ctx, ex.Text)
	if err != nil {
		return err
	}
	result, err := s.assess(ctx, text)
	if err != nil {
		var busy *busyError
		if errors.As(err, &busy) {
			// Waiting is not failing: say so, and come back later.
			_, _ = s.pub.Emit(ctx, m, streams.Progress, "queued", streams.ProgressData{
				Stage: streams.StageAnalyze, Step: "queued", Status: "queued", Message: "waiting for model capacity",
			})
			return streams.RetryAfter(s.busyDelay, err)
		}
		return err
	}
	result.TextSHA256 = ex.Text.SHA256
	_, err = s.pub.Emit(ctx, m, streams.Analyzed, "", result)
	if err == nil {
		zerolog.Ctx(ctx).Info().Int("score", result.Score).Str("level", result.Level).Str("model", result.Model).Msg("analyzed")
	}
	return err
}

func (s *Stage) readText(ctx context.Context, ref streams.ObjectRef) (string, error) {
	rc, _, err := s.objects.Get(ctx, ref.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return "", streams.Permanentf("text-missing", "the extracted text %s is gone", ref.Key)
	}
	if err != nil {
		return "", fmt.Errorf("read text: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, int64(s.maxChars)*4+1))
	if err != nil {
		return "", fmt.Errorf("read text: %w", err)
	}
	return string(raw), nil
}

type busyError struct{ err error }

func (e *busyError) Error() string { return "model busy: " + e.err.Error() }
func (e *busyError) Unwrap() error { return e.err }

// assess makes one forced-tool Converse call and checks its answer.
func (s *Stage) assess(ctx context.Context, text string) (streams.AnalyzedData, error) {
	in := &bedrockruntime.ConverseInput{
		ModelId: aws.String(s.model.ID),
		System:  []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: prompt.System}},
		Messages: []types.Message{{
			Role:    types.ConversationRoleUser,
			Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: prompt.User("", text, prompt.Nonce())}},
		}},
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(s.model.MaxOutputTokens)), Temperature: aws.Float32(0)},
		ToolConfig: &types.ToolConfiguration{
			Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
				Name:        aws.String(assessment.ToolName),
				Description: aws.String("Record the structured risk assessment of the document."),
				InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(assessment.InputSchema())},
			}}},
			ToolChoice: &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(assessment.ToolName)}},
		},
	}
	start := time.Now()
	out, err := s.client.Converse(ctx, in)
	attempt := streams.Attempt{Model: s.model.ID, LatencyMS: time.Since(start).Milliseconds(), Outcome: "ok"}
	if err != nil {
		attempt.Outcome, attempt.Error = "error", err.Error()
		switch bedrock.Classify(err) {
		case bedrock.ClassThrottled:
			return streams.AnalyzedData{}, &busyError{err: err}
		case bedrock.ClassPermanent:
			return streams.AnalyzedData{}, streams.Permanent("model-rejected", err)
		default:
			return streams.AnalyzedData{}, fmt.Errorf("converse with %s: %w", s.model.ID, err)
		}
	}
	if out.StopReason == types.StopReasonMaxTokens {
		// A cut-off answer is incomplete, never an answer.
		return streams.AnalyzedData{}, fmt.Errorf("model %s stopped at max_tokens: incomplete assessment", s.model.ID)
	}
	raw, err := toolInput(out)
	if err != nil {
		return streams.AnalyzedData{}, streams.Permanent("invalid-assessment", err)
	}
	a, err := assessment.Parse(raw)
	if err == nil {
		err = assessment.Validate(a, text)
	}
	if err != nil {
		return streams.AnalyzedData{}, streams.Permanent("invalid-assessment", err)
	}
	// The score shown is derived from the findings by a documented rule,
	// not taken on the model's word.
	a.OverallScore, a.RiskLevel = assessment.Score(a.RiskFactors)
	final, err := json.Marshal(a)
	if err != nil {
		return streams.AnalyzedData{}, fmt.Errorf("encode assessment: %w", err)
	}
	var inTok, outTok int
	if out.Usage != nil {
		inTok, outTok = int(aws.ToInt32(out.Usage.InputTokens)), int(aws.ToInt32(out.Usage.OutputTokens))
	}
	return streams.AnalyzedData{
		Assessment:    final,
		Score:         a.OverallScore,
		Level:         a.RiskLevel,
		Model:         s.model.ID,
		PromptVersion: prompt.Version,
		Attempts:      []streams.Attempt{attempt},
		InputTokens:   inTok,
		OutputTokens:  outTok,
		CostUSD:       float64(inTok)/1000*s.model.PricePer1kIn + float64(outTok)/1000*s.model.PricePer1kOut,
	}, nil
}

// toolInput returns the JSON input of the forced tool call.
func toolInput(out *bedrockruntime.ConverseOutput) ([]byte, error) {
	msg, ok := out.Output.(*types.ConverseOutputMemberMessage)
	if !ok {
		return nil, errors.New("model returned no message")
	}
	for _, block := range msg.Value.Content {
		if tu, ok := block.(*types.ContentBlockMemberToolUse); ok && aws.ToString(tu.Value.Name) == assessment.ToolName {
			raw, err := tu.Value.Input.MarshalSmithyDocument()
			if err != nil {
				return nil, fmt.Errorf("decode tool input: %w", err)
			}
			return raw, nil
		}
	}
	return nil, errors.New("model did not call " + assessment.ToolName)
}
