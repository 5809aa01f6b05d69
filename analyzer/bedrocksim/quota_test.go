package bedrocksim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/aiprism/prism/analyzer/bedrocksim"
)

func converse(c *bedrockruntime.Client, model, text string, maxTokens int32) (*bedrockruntime.ConverseOutput, error) {
	in := &bedrockruntime.ConverseInput{ModelId: aws.String(model), Messages: userText(text)}
	if maxTokens > 0 {
		in.InferenceConfig = &types.InferenceConfiguration{MaxTokens: aws.Int32(maxTokens)}
	}
	return c.Converse(context.Background(), in)
}

func throttleMessage(err error) string {
	var thr *types.ThrottlingException
	if !errors.As(err, &thr) {
		return ""
	}
	return thr.ErrorMessage()
}

func TestRequestQuotaRefills(t *testing.T) {
	clock := newFakeClock()
	sim, ts := startSim(t, bedrocksim.Config{Clock: clock, Models: []bedrocksim.Model{{ID: "m", RequestsPerMinute: 2}}})
	c := client(ts.URL, testKey, testSecret)
	for i := range 2 {
		if _, err := converse(c, "m", "hello there", 0); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	_, err := converse(c, "m", "hello there", 0)
	if msg := throttleMessage(err); msg != "Too many requests, please wait before trying again." {
		t.Fatalf("third call: %v", err)
	}
	clock.Advance(29 * time.Second) // 2/min refills one request every 30 s
	if _, err := converse(c, "m", "hello there", 0); throttleMessage(err) == "" {
		t.Fatalf("after 29 s: err = %v, want throttling", err)
	}
	clock.Advance(time.Second)
	if _, err := converse(c, "m", "hello there", 0); err != nil {
		t.Fatalf("after 30 s: %v", err)
	}
	st := sim.Stats().Models["m"]
	if st.Requests != 5 || st.Successes != 3 || st.Throttles["requests"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestTokenQuotaReservesAndRefunds(t *testing.T) {
	clock := newFakeClock()
	_, ts := startSim(t, bedrocksim.Config{Clock: clock, Models: []bedrocksim.Model{
		{ID: "plain", TokensPerMinute: 1000},
		{ID: "claude4", TokensPerMinute: 1000, OutputBurndown: 5},
	}})
	c := client(ts.URL, testKey, testSecret)

	// 900 max tokens are reserved, but the short answer uses far fewer and
	// the rest is refunded, so a second large reservation still fits.
	out, err := converse(c, "plain", "hi", 900)
	if err != nil {
		t.Fatal(err)
	}
	used := int(aws.ToInt32(out.Usage.TotalTokens))
	if _, err := converse(c, "plain", "hi", int32(990-used)); err != nil {
		t.Fatalf("refund missing: %v", err)
	}
	if _, err := converse(c, "plain", "hi", 900); throttleMessage(err) != "Too many tokens, please wait before trying again." {
		t.Fatalf("err = %v, want Too many tokens", err)
	}

	// With a burndown of 5, max_tokens 250 reserves 1250 > 1000 tokens/min.
	if _, err := converse(c, "claude4", "hi", 250); throttleMessage(err) == "" {
		t.Fatalf("burndown not applied: %v", err)
	}
	if _, err := converse(c, "claude4", "hi", 190); err != nil {
		t.Fatalf("190 x 5 should fit: %v", err)
	}
	clock.Advance(time.Minute)
	if _, err := converse(c, "plain", "hi", 900); err != nil {
		t.Fatalf("after a minute: %v", err)
	}
}

func TestContextCancellation(t *testing.T) {
	sim, ts := startSim(t, bedrocksim.Config{Speed: 1, Models: []bedrocksim.Model{{ID: "slow", TimeToFirstTokenMs: 5000}}})
	c := client(ts.URL, testKey, testSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Converse(ctx, &bedrockruntime.ConverseInput{ModelId: aws.String("slow"), Messages: userText("hi")})
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	deadline := time.Now().Add(2 * time.Second)
	for sim.Stats().Models["slow"].Errors["ClientCanceled"] != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("server did not notice the cancellation: %+v", sim.Stats().Models["slow"])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLatencyModel(t *testing.T) {
	_, ts := startSim(t, bedrocksim.Config{Speed: 0.1, Models: []bedrocksim.Model{{ID: "m", TimeToFirstTokenMs: 1000, TokensPerSecond: 1000}}})
	c := client(ts.URL, testKey, testSecret)
	start := time.Now()
	if _, err := converse(c, "m", "hi", 0); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Fatalf("took %v, want about 100 ms (1 s time to first token x speed 0.1)", took)
	}
}

func TestLatencyFollowsTokensPerSecond(t *testing.T) {
	_, ts := startSim(t, bedrocksim.Config{Speed: 1, Models: []bedrocksim.Model{{ID: "m", TimeToFirstTokenMs: 1, TokensPerSecond: 200}}})
	c := client(ts.URL, testKey, testSecret)
	start := time.Now()
	out, err := converse(c, "m", "Explain quarterly budget forecasting", 0)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	want := time.Duration(float64(aws.ToInt32(out.Usage.OutputTokens)) / 200 * float64(time.Second))
	if took < want*8/10 || took > want+time.Second {
		t.Fatalf("%d output tokens took %v, want about %v at 200 tokens/s", aws.ToInt32(out.Usage.OutputTokens), took, want)
	}
}
