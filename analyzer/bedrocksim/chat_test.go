package bedrocksim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/aiprism/prism/analyzer/assessment"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/prompt"
)

// chatMaterial is a bound session's material as the answerer frames it.
// Passage 3 mentions JSON: material is data, and must not turn the chat
// turn into a request for an assessment.
func chatMaterial(t *testing.T) prompt.Material {
	t.Helper()
	a, err := json.Marshal(assessment.Assessment{
		Summary: "Supply agreement with uncapped liability.", OverallScore: 72, RiskLevel: "high",
		RiskFactors: []assessment.RiskFactor{{Category: "liability", Severity: "critical", Title: "Unlimited liability",
			Evidence: "The Supplier's liability under this Agreement is unlimited.", Location: "line 40"}},
		Recommendations: []string{"Negotiate a liability cap."}, ComplianceConcerns: []assessment.ComplianceConcern{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return prompt.Material{
		Filename:   "supply.pdf",
		Assessment: string(a),
		Passages: []prompt.Passage{
			{Ref: 1, Where: "page 1, lines 3-6", Text: "Payment is due within 60 days of the invoice date. Late payments bear interest at 8% per year."},
			{Ref: 2, Where: "page 3, lines 40-44", Text: "Section 9. The Supplier's liability under this Agreement is unlimited.\nThe indemnity in Section 10 covers third-party claims without any cap."},
			{Ref: 3, Where: "page 5, lines 2-3", Text: "Either party may terminate with 90 days notice. Reports are exchanged as JSON files."},
		},
		Documents: []string{"supply.pdf: high, 72/100: Supply agreement with uncapped liability.", "lease.docx: low, 10/100: Office lease."},
	}
}

func chatInput(model, user string) *bedrockruntime.ConverseInput {
	return &bedrockruntime.ConverseInput{
		ModelId:  aws.String(model),
		System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: prompt.ChatSystem}},
		Messages: userText(user),
	}
}

func converseText(t *testing.T, c *bedrockruntime.Client, in *bedrockruntime.ConverseInput) string {
	t.Helper()
	out, err := c.Converse(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if out.StopReason != types.StopReasonEndTurn {
		t.Fatalf("stop reason %s, want a chat answer (end_turn)", out.StopReason)
	}
	return out.Output.(*types.ConverseOutputMemberMessage).Value.Content[0].(*types.ContentBlockMemberText).Value
}

// streamDeltas runs in through ConverseStream and returns each text delta
// with the time it arrived after the call.
func streamDeltas(t *testing.T, c *bedrockruntime.Client, in *bedrockruntime.ConverseInput) ([]string, []time.Duration) {
	t.Helper()
	start := time.Now()
	out, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{ModelId: in.ModelId, System: in.System, Messages: in.Messages})
	if err != nil {
		t.Fatal(err)
	}
	stream := out.GetStream()
	defer stream.Close()
	var texts []string
	var at []time.Duration
	for ev := range stream.Events() {
		if d, ok := ev.(*types.ConverseStreamOutputMemberContentBlockDelta); ok {
			texts = append(texts, d.Value.Delta.(*types.ContentBlockDeltaMemberText).Value)
			at = append(at, time.Since(start))
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return texts, at
}

var citedQuote = regexp.MustCompile(`"([^"]+)" \[(\d+)\]`)

// A chat turn framed by prompt.ChatUser is answered from its material: the
// passages sharing the question's keywords are quoted verbatim and cited
// [n] right after, the assessment's rating is given, the documents the
// question names are mentioned; the same prompt gives the same answer,
// streamed or not; the request log shows what the prompt carried.
func TestChatAnswerIsGroundedInTheFramedMaterial(t *testing.T) {
	sim, ts := startSim(t, bedrocksim.Config{})
	c := client(ts.URL, testKey, testSecret)
	mat := chatMaterial(t)
	question := "Why is the liability clause in supply.pdf a problem, and does the indemnity help?"
	in := chatInput(sonnet45, prompt.ChatUser(question, mat, prompt.Nonce()))

	answer := converseText(t, c, in)
	if !strings.HasPrefix(answer, "[bedrocksim] Simulated answer") {
		t.Fatalf("no disclaimer:\n%s", answer)
	}
	quotes := citedQuote.FindAllStringSubmatch(answer, -1)
	if len(quotes) == 0 {
		t.Fatalf("no cited quote in:\n%s", answer)
	}
	cited := map[int]bool{}
	for _, q := range quotes {
		n, _ := strconv.Atoi(q[2])
		if n < 1 || n > len(mat.Passages) || !strings.Contains(mat.Passages[n-1].Text, q[1]) {
			t.Fatalf("%q [%d] is not a verbatim quote of a passage given:\n%s", q[1], n, answer)
		}
		cited[n] = true
	}
	for _, ref := range regexp.MustCompile(`\[(\d+)\]`).FindAllStringSubmatch(answer, -1) {
		if n, _ := strconv.Atoi(ref[1]); !cited[n] {
			t.Fatalf("[%d] is cited without its quote:\n%s", n, answer)
		}
	}
	if !cited[2] || cited[1] {
		t.Fatalf("cited %v; want passage 2 (liability, indemnity), not passage 1 (payment):\n%s", cited, answer)
	}
	for _, want := range []string{"high risk (72/100)", `"Unlimited liability" (critical)`, "supply.pdf: high, 72/100"} {
		if !strings.Contains(answer, want) {
			t.Fatalf("answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, "lease.docx") {
		t.Fatalf("answer mentions a document the question does not name:\n%s", answer)
	}
	if len(answer) < 300 {
		t.Fatalf("answer of %d bytes; want a few hundred, to stream in several deltas", len(answer))
	}

	if again := converseText(t, c, in); again != answer {
		t.Fatalf("same prompt, different answer:\n%s\n---\n%s", answer, again)
	}
	if texts, _ := streamDeltas(t, c, in); strings.Join(texts, "") != answer || len(texts) < 5 {
		t.Fatalf("%d deltas making up\n%s\nwant several, making up the Converse answer", len(texts), strings.Join(texts, ""))
	}

	var logged []bedrocksim.LoggedRequest
	adminDo(t, "GET", ts.URL+"/_sim/requests", "", &logged)
	if len(logged) != 3 || len(sim.Requests()) != 3 {
		t.Fatalf("the log holds %d requests (%d in Go), want 3", len(logged), len(sim.Requests()))
	}
	last := logged[2]
	if last.Operation != "converse-stream" || last.Model != sonnet45 || last.Outcome != "ok" || last.System != prompt.ChatSystem || last.Messages != 1 {
		t.Fatalf("logged %+v", last)
	}
	for _, want := range []string{`"risk_level":"high"`, mat.Passages[1].Text, "[2] page 3, lines 40-44", "lease.docx", question} {
		if !strings.Contains(last.User, want) {
			t.Fatalf("the logged prompt lacks %q:\n%s", want, last.User)
		}
	}
}

// A question none of the passages shares a word with is told so, and
// still gets the best retrieved passage, quoted and cited.
func TestChatAnswerSaysWhenNoPassageFits(t *testing.T) {
	_, ts := startSim(t, bedrocksim.Config{})
	c := client(ts.URL, testKey, testSecret)
	mat := chatMaterial(t)
	mat.Assessment, mat.Documents = "", nil
	answer := converseText(t, c, chatInput(haiku3, prompt.ChatUser("Whom should we call about wildfire evacuation drills?", mat, prompt.Nonce())))
	q := citedQuote.FindAllStringSubmatch(answer, -1)
	if !strings.Contains(answer, "None of the passages speaks to") || len(q) != 1 || q[0][2] != "1" || !strings.Contains(mat.Passages[0].Text, q[0][1]) {
		t.Fatalf("want the first passage quoted as the closest:\n%s", answer)
	}
	if strings.Contains(answer, "risk (") {
		t.Fatalf("an answer without an assessment rates the document:\n%s", answer)
	}
}

// A question without the chat frame keeps the generic answer: keyword
// points, no citations.
func TestUnframedChatKeepsTheGenericAnswer(t *testing.T) {
	_, ts := startSim(t, bedrocksim.Config{})
	c := client(ts.URL, testKey, testSecret)
	answer := converseText(t, c, chatInput(sonnet45, "Why is the liability clause a problem?"))
	if !strings.Contains(answer, "1. Liability: clarify what it means") || strings.Contains(answer, "[1]") || strings.Contains(answer, "Passage") {
		t.Fatalf("want the generic keyword answer:\n%s", answer)
	}
}

// Chat answers stream at the latency model's pace: nothing before the time
// to first token, the last delta after the answer's tokens at the model's
// rate, in many deltas between.
func TestChatStreamIsPacedByTheLatencyModel(t *testing.T) {
	const ttft, tps = 150 * time.Millisecond, 400.0
	_, ts := startSim(t, bedrocksim.Config{Speed: 1, Models: []bedrocksim.Model{{ID: "m", TimeToFirstTokenMs: int(ttft / time.Millisecond), TokensPerSecond: tps}}})
	c := client(ts.URL, testKey, testSecret)
	texts, at := streamDeltas(t, c, chatInput("m", prompt.ChatUser("Does the indemnity cover liability claims?", chatMaterial(t), prompt.Nonce())))
	answer := strings.Join(texts, "")
	writing := time.Duration(float64(bedrocksim.EstimateTokens(answer)) / tps * float64(time.Second))
	if len(texts) < 10 || at[0] < ttft || at[len(at)-1] < ttft+writing*8/10 {
		t.Fatalf("%d deltas, first at %v, last at %v; want many, the first after %v, the last after about %v",
			len(texts), at[0], at[len(at)-1], ttft, ttft+writing)
	}
	if spread := at[len(at)-1] - at[0]; spread < writing/2 {
		t.Fatalf("the deltas came within %v; want them spread over the writing time, about %v", spread, writing)
	}
}

// The request log keeps the last 100 calls, cuts long texts, and empties
// on DELETE and on a reset.
func TestRequestLogIsBounded(t *testing.T) {
	sim, ts := startSim(t, bedrocksim.Config{})
	c := client(ts.URL, testKey, testSecret)
	for i := range 105 {
		if _, err := converse(c, haiku3, fmt.Sprintf("question %d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("é", 40_000) // 80,000 bytes
	if _, err := converse(c, sonnet45, long, 0); err != nil {
		t.Fatal(err)
	}
	logged := sim.Requests()
	if len(logged) != 100 || logged[0].User != "question 6" {
		t.Fatalf("%d logged, the oldest %q; want 100, from question 6", len(logged), logged[0].User)
	}
	last := logged[99]
	if !last.Truncated || len(last.User) > 32<<10 || !strings.HasPrefix(long, last.User) || last.InputTokens != bedrocksim.EstimateTokens(long) {
		t.Fatalf("the long request was logged with %d bytes (truncated %v)", len(last.User), last.Truncated)
	}
	adminDo(t, "DELETE", ts.URL+"/_sim/requests", "", nil)
	if n := len(sim.Requests()); n != 0 {
		t.Fatalf("%d requests after DELETE", n)
	}
	if _, err := converse(c, haiku3, "one more", 0); err != nil {
		t.Fatal(err)
	}
	adminDo(t, "POST", ts.URL+"/_sim/reset", "", nil)
	if n := len(sim.Requests()); n != 0 {
		t.Fatalf("%d requests after a reset", n)
	}
}

// A cut connection stops the stream halfway with no exception frame: the
// client sees some deltas and no messageStop (the SDK may even report no
// error: only the missing messageStop tells the answer is incomplete).
func TestMidStreamCutDropsTheConnection(t *testing.T) {
	sim, ts := startSim(t, bedrocksim.Config{Faults: map[string]bedrocksim.Faults{haiku3: {MidStream: 1, MidStreamCut: true}}})
	c := client(ts.URL, testKey, testSecret)
	out, err := c.ConverseStream(context.Background(), &bedrockruntime.ConverseStreamInput{
		ModelId: aws.String(haiku3), Messages: userText("Tell me about the history of maritime insurance contracts"),
	})
	if err != nil {
		t.Fatal(err)
	}
	deltas, stopped := 0, false
	for ev := range out.GetStream().Events() {
		switch ev.(type) {
		case *types.ConverseStreamOutputMemberContentBlockDelta:
			deltas++
		case *types.ConverseStreamOutputMemberMessageStop:
			stopped = true
		}
	}
	err = out.GetStream().Err()
	var modelled interface{ ErrorCode() string }
	if deltas == 0 || stopped || errors.As(err, &modelled) {
		t.Fatalf("%d deltas, messageStop %v, err %v; want some deltas, then the stream broken without an exception", deltas, stopped, err)
	}
	if n := sim.Stats().Models[haiku3].Errors["ConnectionCut"]; n != 1 {
		t.Fatalf("ConnectionCut counted %d times", n)
	}
}
