package assessment_test

import (
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer/assessment"
)

const doc = "1. Liability.\nThe Supplier accepts   unlimited\nliability for all damages.\n2. Term. This agreement renews automatically."

// valid is a well-formed, grounded answer as a model sends it; cases below
// break one thing in it each.
const valid = `{"summary":"One critical finding.","overall_score":50,"risk_level":"high",
"risk_factors":[{"category":"liability","severity":"critical","title":"Unlimited liability",
  "evidence":"The Supplier accepts unlimited liability for all damages.","location":"clause 1","explanation":"No cap on damages."}],
"recommendations":["Negotiate a liability cap."],
"compliance_concerns":[{"regulation":"GDPR","concern":"Damages for data breaches are uncapped."}]}`

func TestParseAcceptsGroundedAssessment(t *testing.T) {
	v := assessment.MustNewValidator()
	a, err := v.Parse([]byte(valid), doc)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if a.RiskFactors[0].Title != "Unlimited liability" || a.OverallScore != 50 || a.ComplianceConcerns[0].Regulation != "GDPR" {
		t.Fatalf("decoded %+v", a)
	}
	// What the schema calls an integer is one, however it is written.
	for _, score := range []string{"50.0", "5e1"} {
		a, err := v.Parse([]byte(strings.Replace(valid, `"overall_score":50`, `"overall_score":`+score, 1)), doc)
		if err != nil || a.OverallScore != 50 {
			t.Errorf("overall_score %s: %d, %v", score, a.OverallScore, err)
		}
	}
}

// Each invalid answer is rejected with a message that names the failing
// field by its JSON pointer, which is what the repair turn shows the model.
func TestParseRejects(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(valid, old) {
			t.Fatalf("%q is not in the valid answer", old)
		}
		return strings.Replace(valid, old, new, 1)
	}
	cases := []struct{ name, raw, want string }{
		{"missing field", edit(`"summary":"One critical finding.",`, ``), "/summary: required property is missing"},
		{"missing nested field", edit(`"title":"Unlimited liability",`, ``), "/risk_factors/0/title: required property is missing"},
		{"null field", edit(`"risk_factors":[`, `"risk_factors":null,"x":[`), "/risk_factors: got null, want array"},
		{"null optional field", edit(`"location":"clause 1"`, `"location":null`), "/risk_factors/0/location: got null, want string"},
		{"unknown severity", edit(`"severity":"critical"`, `"severity":"extreme"`), "/risk_factors/0/severity: value must be one of"},
		{"unknown category", edit(`"category":"liability"`, `"category":"weather"`), "/risk_factors/0/category: value must be one of"},
		{"unknown level", edit(`"risk_level":"high"`, `"risk_level":"severe"`), "/risk_level: value must be one of"},
		{"score above 100", edit(`"overall_score":50`, `"overall_score":101`), "/overall_score: "},
		{"negative score", edit(`"overall_score":50`, `"overall_score":-1`), "/overall_score: "},
		{"fractional score", edit(`"overall_score":50`, `"overall_score":50.5`), "/overall_score: got number, want integer"},
		{"score of the wrong type", edit(`"overall_score":50`, `"overall_score":"high"`), "/overall_score: got string, want integer"},
		{"list of the wrong type", edit(`"recommendations":["Negotiate a liability cap."]`, `"recommendations":"Negotiate."`), "/recommendations: got string, want array"},
		{"unknown field", edit(`"summary"`, `"mood":"calm","summary"`), "/mood: property is not in the schema"},
		{"unknown nested field", edit(`"title"`, `"confidence":0.9,"title"`), "/risk_factors/0/confidence: property is not in the schema"},
		{"blank summary", edit(`"summary":"One critical finding."`, `"summary":"  \n "`), "/summary: "},
		{"empty explanation", edit(`"explanation":"No cap on damages."`, `"explanation":""`), "/risk_factors/0/explanation: "},
		{"long title", edit(`"title":"Unlimited liability"`, `"title":"`+strings.Repeat("x", 201)+`"`), "/risk_factors/0/title: "},
		{"empty recommendation", edit(`["Negotiate a liability cap."]`, `["Negotiate a liability cap.",""]`), "/recommendations/1: "},
		{"too many recommendations", edit(`["Negotiate a liability cap."]`, `[`+strings.Repeat(`"Cap.",`, 20)+`"Cap."]`), "/recommendations: "},
		{"empty regulation", edit(`"regulation":"GDPR"`, `"regulation":""`), "/compliance_concerns/0/regulation: "},
		{"invented evidence", edit(`"evidence":"The Supplier accepts unlimited liability for all damages."`, `"evidence":"The Customer pays all fines."`),
			"/risk_factors/0/evidence: not a verbatim quote from the document"},
		{"not an object", `[]`, "(document): got array, want object"},
		{"trailing data", valid + `{}`, "not JSON"},
		{"not JSON", `risk: high`, "not JSON"},
	}
	v := assessment.MustNewValidator()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Parse([]byte(c.raw), doc)
			if err == nil {
				t.Fatalf("accepted %s", c.raw)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error does not say %q:\n%v", c.want, err)
			}
		})
	}
}

// A repair turn lists everything that is wrong, not only the first thing.
func TestParseReportsEveryProblem(t *testing.T) {
	raw := strings.NewReplacer(`"severity":"critical"`, `"severity":"extreme"`, `"summary":"One critical finding.",`, ``,
		`"evidence":"The Supplier accepts unlimited liability for all damages."`, `"evidence":"The Customer pays all fines."`).Replace(valid)
	_, err := assessment.MustNewValidator().Parse([]byte(raw), doc)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"\n/summary: ", "\n/risk_factors/0/severity: ", "\n/risk_factors/0/evidence: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks a line %q:\n%v", want, err)
		}
	}
}

// The Go severity words, and the levels Score gives, are the schema's.
func TestSeveritiesAreTheSchemas(t *testing.T) {
	v := assessment.MustNewValidator()
	for _, sev := range []string{assessment.SeverityLow, assessment.SeverityMedium, assessment.SeverityHigh, assessment.SeverityCritical} {
		f := []assessment.RiskFactor{{Severity: sev}}
		_, level := assessment.Score(f)
		raw := strings.NewReplacer(`"severity":"critical"`, `"severity":"`+sev+`"`, `"risk_level":"high"`, `"risk_level":"`+level+`"`).Replace(valid)
		if _, err := v.Parse([]byte(raw), doc); err != nil {
			t.Errorf("severity %s, level %s: %v", sev, level, err)
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
