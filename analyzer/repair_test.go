package analyzer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/assessment"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// scripted plays a model that answers from a script: the simulator never
// gets the schema wrong, so the repair turn needs a model that does.
type scripted struct {
	answers []map[string]any
	seen    [][]types.Message
}

func (s *scripted) Chain() router.Chain { return router.DefaultChain()[:1] }

func (s *scripted) Preferred(context.Context, func(router.Model) bool) (router.Model, error) {
	return router.DefaultChain()[0], nil
}

func (s *scripted) Converse(ctx context.Context, req router.Request) (*router.Result, error) {
	m := router.DefaultChain()[0]
	in := req.Build(m, req.MaxOutputTokens)
	s.seen = append(s.seen, in.Messages)
	answer := s.answers[min(len(s.seen), len(s.answers))-1]
	stop := types.StopReasonToolUse
	if answer == nil { // a nil answer plays one cut off at max_tokens
		stop, answer = types.StopReasonMaxTokens, map[string]any{}
	}
	return &router.Result{Model: m, Output: &bedrockruntime.ConverseOutput{
		StopReason: stop,
		Output: &types.ConverseOutputMemberMessage{Value: types.Message{Role: types.ConversationRoleAssistant, Content: []types.ContentBlock{
			&types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{ToolUseId: aws.String("t1"), Name: aws.String(assessment.ToolName), Input: document.NewLazyDocument(answer)}},
		}}},
	}}, nil
}

func answer(evidence string) map[string]any {
	return map[string]any{
		"summary": "A supply agreement.", "overall_score": 25, "risk_level": "medium",
		"risk_factors": []map[string]any{{"category": "liability", "severity": "high", "title": "Unlimited liability",
			"evidence": evidence, "explanation": "The customer carries unlimited liability."}},
		"recommendations": []string{"Cap the liability."}, "compliance_concerns": []map[string]any{},
	}
}

// An answer that breaks the schema and quotes what is not in the document
// is sent back once, with every problem named by its field's JSON pointer.
func TestInvalidAnswerGetsOneRepairTurn(t *testing.T) {
	f := newFixture(t, analyzer.StageConfig{})
	bad := answer("a quote that is not in the document")
	bad["risk_level"] = "severe"
	bad["risk_factors"].([]map[string]any)[0]["severity"] = "extreme"
	bad["mood"] = "calm"
	delete(bad, "summary")
	model := &scripted{answers: []map[string]any{bad, answer("unlimited liability for all direct and indirect damages")}}
	stage := analyzer.NewStage(f.store, model, nil, f.pub, analyzer.StageConfig{MaxOutputTokens: 1024, ChunkBytes: 400_000, MaxChars: 1 << 20}, nil)
	if err := stage.Handle(context.Background(), f.extracted(t, "doc1", riskyContract)); err != nil {
		t.Fatal(err)
	}
	if len(model.seen) != 2 {
		t.Fatalf("%d calls, want the answer and one repair", len(model.seen))
	}
	repair := model.seen[1]
	last, ok := repair[len(repair)-1].Content[0].(*types.ContentBlockMemberToolResult)
	if len(repair) != 3 || !ok || last.Value.Status != types.ToolResultStatusError {
		t.Fatalf("the repair turn does not return the problems as a failed tool result: %+v", repair)
	}
	told := last.Value.Content[0].(*types.ToolResultContentBlockMemberText).Value
	for _, want := range []string{
		"\n/risk_level: value must be one of 'low', 'medium', 'high', 'critical'\n",
		"\n/risk_factors/0/severity: value must be one of",
		"\n/mood: property is not in the schema\n",
		"\n/summary: required property is missing\n",
		"\n/risk_factors/0/evidence: not a verbatim quote from the document",
	} {
		if !strings.Contains(told, want) {
			t.Errorf("the repair turn does not say %q:\n%s", want, told)
		}
	}
	_, a := f.analyzed(t, "doc1", riskyContract)
	if a.RiskFactors[0].Evidence != "unlimited liability for all direct and indirect damages" {
		t.Fatalf("stored %+v", a.RiskFactors)
	}
}

func TestAnswerStillInvalidAfterRepairFailsTheDocument(t *testing.T) {
	f := newFixture(t, analyzer.StageConfig{})
	model := &scripted{answers: []map[string]any{answer("not in the document")}}
	stage := analyzer.NewStage(f.store, model, nil, f.pub, analyzer.StageConfig{MaxOutputTokens: 1024, ChunkBytes: 400_000, MaxChars: 1 << 20}, nil)
	err := stage.Handle(context.Background(), f.extracted(t, "doc1", riskyContract))
	var perm *streams.PermanentError
	if !errors.As(err, &perm) || perm.Class != "invalid-assessment" || len(model.seen) != 2 {
		t.Fatalf("want invalid-assessment after exactly one repair, got %v after %d calls", err, len(model.seen))
	}
}

// An answer cut off at max_tokens is retried with more room, and the
// retried answer still gets its one repair turn if it is invalid.
func TestRepairAfterACutOffAnswer(t *testing.T) {
	f := newFixture(t, analyzer.StageConfig{})
	model := &scripted{answers: []map[string]any{nil, answer("not in the document"), answer("unlimited liability for all direct and indirect damages")}}
	stage := analyzer.NewStage(f.store, model, nil, f.pub, analyzer.StageConfig{MaxOutputTokens: 1024, ChunkBytes: 400_000, MaxChars: 1 << 20}, nil)
	if err := stage.Handle(context.Background(), f.extracted(t, "doc1", riskyContract)); err != nil {
		t.Fatalf("after a cut-off and a repair: %v (%d calls)", err, len(model.seen))
	}
	if len(model.seen) != 3 {
		t.Fatalf("%d calls, want the cut-off one, its retry and one repair", len(model.seen))
	}
}
