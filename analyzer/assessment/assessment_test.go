package assessment_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer/assessment"
)

const doc = "1. Liability.\nThe Supplier accepts   unlimited\nliability for all damages.\n2. Term. This agreement renews automatically."

func valid() assessment.Assessment {
	f := []assessment.RiskFactor{{
		Category: "liability", Severity: "critical", Title: "Unlimited liability",
		Evidence: "The Supplier accepts unlimited liability for all damages.", Location: "clause 1",
		Explanation: "No cap on damages.",
	}}
	score, level := assessment.Score(f)
	return assessment.Assessment{
		Summary: "One critical finding.", OverallScore: score, RiskLevel: level,
		RiskFactors: f, Recommendations: []string{"Negotiate a liability cap."},
		ComplianceConcerns: []assessment.ComplianceConcern{},
	}
}

func TestValidateAcceptsGroundedAssessment(t *testing.T) {
	if err := assessment.Validate(valid(), doc); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	cases := map[string]func(a *assessment.Assessment){
		"empty summary":        func(a *assessment.Assessment) { a.Summary = "  " },
		"score above 100":      func(a *assessment.Assessment) { a.OverallScore = 101 },
		"negative score":       func(a *assessment.Assessment) { a.OverallScore = -1 },
		"unknown level":        func(a *assessment.Assessment) { a.RiskLevel = "severe" },
		"unknown category":     func(a *assessment.Assessment) { a.RiskFactors[0].Category = "weather" },
		"unknown severity":     func(a *assessment.Assessment) { a.RiskFactors[0].Severity = "extreme" },
		"empty title":          func(a *assessment.Assessment) { a.RiskFactors[0].Title = "" },
		"empty explanation":    func(a *assessment.Assessment) { a.RiskFactors[0].Explanation = "" },
		"invented evidence":    func(a *assessment.Assessment) { a.RiskFactors[0].Evidence = "The Customer pays all fines." },
		"empty evidence":       func(a *assessment.Assessment) { a.RiskFactors[0].Evidence = "\n" },
		"long title":           func(a *assessment.Assessment) { a.RiskFactors[0].Title = strings.Repeat("x", assessment.MaxTitleLen+1) },
		"empty regulation":     func(a *assessment.Assessment) { a.ComplianceConcerns = []assessment.ComplianceConcern{{Concern: "x"}} },
		"empty recommendation": func(a *assessment.Assessment) { a.Recommendations = []string{""} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			a := valid()
			mutate(&a)
			if err := assessment.Validate(a, doc); err == nil {
				t.Fatal("Validate accepted an invalid assessment")
			}
		})
	}
}

func TestParseStrict(t *testing.T) {
	good, err := json.Marshal(valid())
	if err != nil {
		t.Fatal(err)
	}
	a, err := assessment.Parse(good)
	if err != nil {
		t.Fatalf("Parse(valid): %v", err)
	}
	if a.RiskFactors[0].Title != "Unlimited liability" {
		t.Fatalf("round trip lost data: %+v", a)
	}
	bad := map[string]string{
		"unknown field":  strings.Replace(string(good), `"summary"`, `"mood":"x","summary"`, 1),
		"missing field":  `{"summary":"x","overall_score":1,"risk_level":"low","risk_factors":[],"recommendations":[]}`,
		"null field":     `{"summary":"x","overall_score":1,"risk_level":"low","risk_factors":null,"recommendations":[],"compliance_concerns":[]}`,
		"wrong type":     `{"summary":"x","overall_score":"high","risk_level":"low","risk_factors":[],"recommendations":[],"compliance_concerns":[]}`,
		"trailing data":  string(good) + `{}`,
		"nested unknown": strings.Replace(string(good), `"title"`, `"confidence":1,"title"`, 1),
		"not json":       `risk: high`,
	}
	for name, raw := range bad {
		if _, err := assessment.Parse([]byte(raw)); err == nil {
			t.Errorf("%s: Parse accepted %s", name, raw)
		}
	}
}

func TestScore(t *testing.T) {
	f := func(sev ...string) []assessment.RiskFactor {
		var out []assessment.RiskFactor
		for _, s := range sev {
			out = append(out, assessment.RiskFactor{Severity: s})
		}
		return out
	}
	cases := []struct {
		in    []assessment.RiskFactor
		score int
		level string
	}{
		{nil, 0, "low"},
		{f("low"), 3, "low"},
		{f("medium", "medium"), 19, "low"},
		{f("high"), 25, "medium"},
		{f("high", "high"), 44, "medium"},
		{f("critical"), 50, "high"},
		{f("medium", "medium", "medium"), 27, "medium"},
		{f("critical", "high"), 63, "high"},
		{f("critical", "critical"), 75, "critical"},
		{f(strings.Fields(strings.Repeat("critical ", 30))...), 100, "critical"},
	}
	for _, c := range cases {
		score, level := assessment.Score(c.in)
		if score != c.score || level != c.level {
			t.Errorf("Score(%d findings) = %d %s, want %d %s", len(c.in), score, level, c.score, c.level)
		}
	}
	// Order independence and monotonicity.
	a, _ := assessment.Score(f("low", "critical", "medium"))
	b, _ := assessment.Score(f("medium", "low", "critical"))
	c, _ := assessment.Score(f("medium", "low", "critical", "low"))
	if a != b || c <= a {
		t.Errorf("order/monotonicity broken: %d %d %d", a, b, c)
	}
}

func TestInputSchemaIsJSONAndStrict(t *testing.T) {
	s := assessment.InputSchema()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"additionalProperties":false`, `"enum":["low","medium","high","critical"]`, `"maximum":100`, `"required":["summary"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("schema lacks %s", want)
		}
	}
	s["type"] = "changed" // must not leak into the next call
	if assessment.InputSchema()["type"] != "object" {
		t.Error("InputSchema shares state between calls")
	}
}
