package bedrocksim_test

import (
	"context"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/rs/zerolog"

	"github.com/aiprism/prism/analyzer/assessment"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/platform/sdkhttp"
)

const (
	sonnet45   = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
	haiku3     = "anthropic.claude-3-haiku-20240307-v1:0"
	testKey    = "AKIDSIMULATOR"
	testSecret = "simulator-secret"
)

// fakeClock is a Clock moved by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// startSim runs a simulator behind an httptest server for the test.
func startSim(t testing.TB, cfg bedrocksim.Config) (*bedrocksim.Server, *httptest.Server) {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	sim, err := bedrocksim.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	return sim, ts
}

// client is the official Bedrock Runtime client pointed at url, with retries
// off so every simulated error reaches the test.
func client(url, key, secret string) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		BaseEndpoint: aws.String(url),
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   sdkhttp.Wrap(nil),
	})
}

func readDoc(t testing.TB, name string) string {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// framed wraps doc in the analyzer's document markers.
func framed(doc string) string {
	return "Assess the risks of the document below.\n<<<DOCUMENT 7f3a9c\n" + doc + "\nDOCUMENT 7f3a9c>>>"
}

func userText(s string) []types.Message {
	return []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: s}}}}
}

// checked parses a simulated answer as the analyzer does: against the
// schema, with every evidence quote found in doc.
func checked(t testing.TB, raw []byte, doc string) assessment.Assessment {
	t.Helper()
	a, err := assessment.MustNewValidator().Parse(raw, doc)
	if err != nil {
		t.Fatalf("simulated assessment is invalid: %v\n%s", err, raw)
	}
	return a
}

func riskToolConfig() *types.ToolConfiguration {
	return &types.ToolConfiguration{
		Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
			Name:        aws.String(assessment.ToolName),
			Description: aws.String("Record the risk assessment."),
			InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(assessment.MustNewValidator().ToolSchema())},
		}}},
		ToolChoice: &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(assessment.ToolName)}},
	}
}

// assess runs a forced-tool Converse call on doc and returns the parsed,
// validated assessment.
func assess(t testing.TB, c *bedrockruntime.Client, model, doc string) assessment.Assessment {
	t.Helper()
	return assessMessage(t, c, model, framed(doc), doc)
}

// assessMessage is assess with the user turn given whole.
func assessMessage(t testing.TB, c *bedrockruntime.Client, model, user, doc string) assessment.Assessment {
	t.Helper()
	out, err := c.Converse(context.Background(), &bedrockruntime.ConverseInput{
		ModelId:         aws.String(model),
		System:          []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "You are a risk analyst. Record your assessment with the tool."}},
		Messages:        userText(user),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(4000)},
		ToolConfig:      riskToolConfig(),
	})
	if err != nil {
		t.Fatalf("Converse: %v", err)
	}
	if out.StopReason != types.StopReasonToolUse {
		t.Fatalf("stopReason = %s, want tool_use", out.StopReason)
	}
	msg := out.Output.(*types.ConverseOutputMemberMessage).Value
	use, ok := msg.Content[0].(*types.ContentBlockMemberToolUse)
	if !ok || aws.ToString(use.Value.Name) != assessment.ToolName {
		t.Fatalf("content[0] = %#v, want a %s tool use", msg.Content[0], assessment.ToolName)
	}
	// MarshalSmithyDocument gives the JSON as received; decoding into any
	// would turn numbers into document.Number strings.
	raw, err := use.Value.Input.MarshalSmithyDocument()
	if err != nil {
		t.Fatalf("tool input: %v", err)
	}
	return checked(t, raw, doc)
}
