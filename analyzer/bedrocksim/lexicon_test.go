package bedrocksim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer/assessment"
)

func TestLexiconIsWellFormed(t *testing.T) {
	v := assessment.MustNewValidator()
	for _, r := range lexicon {
		// A finding of the rule's, alone in an answer, must pass the schema.
		f := []assessment.RiskFactor{{Category: r.category, Severity: r.severity, Title: r.title, Evidence: "x", Explanation: r.explanation}}
		score, level := assessment.Score(f)
		raw, err := json.Marshal(assessment.Assessment{Summary: "x", OverallScore: score, RiskLevel: level, RiskFactors: f,
			Recommendations: []string{r.advice}, ComplianceConcerns: []assessment.ComplianceConcern{}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Parse(raw, "x"); err != nil {
			t.Errorf("rule %q: %v", r.title, err)
		}
		if r.advice == "" || r.explanation == "" || (r.regulation == "") != (r.concern == "") {
			t.Errorf("rule %q: incomplete", r.title)
		}
		for _, term := range r.terms {
			if strings.Contains(strings.Trim(term, "*"), "*") || term != strings.ToLower(term) {
				t.Errorf("rule %q: term %q must be lower case with '*' only at its ends", r.title, term)
			}
		}
	}
}

func TestAnalyzeCorpus(t *testing.T) {
	v := assessment.MustNewValidator()
	files, _ := filepath.Glob("testdata/*.txt")
	terms := newMatcher(lexiconTerms())
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		a := analyze(string(raw), terms)
		answer, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Parse(answer, string(raw)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		t.Logf("%s: %d %s", f, a.OverallScore, a.RiskLevel)
		for _, rf := range a.RiskFactors {
			t.Logf("   %-8s %-22s %-30s %q @%s", rf.Severity, rf.Category, rf.Title, rf.Evidence, rf.Location)
		}
	}
}

func TestDocumentText(t *testing.T) {
	msg := "Assess this.\n<<<DOCUMENT n0nce\nline one\nDOCUMENT fake>>>\nline two\nDOCUMENT n0nce>>>\nThanks"
	doc, ok := documentText(msg)
	if !ok || doc != "line one\nDOCUMENT fake>>>\nline two" {
		t.Fatalf("documentText = %q, %v", doc, ok)
	}
	if got := outsideDocument(msg); got != "Assess this.\n<<<DOCUMENT n0nce\n\nThanks" {
		t.Fatalf("outsideDocument = %q", got)
	}
	if doc, ok := documentText("plain text"); ok || doc != "plain text" {
		t.Fatalf("no markers: %q %v", doc, ok)
	}
}

func TestEvidenceIsBoundedSubstring(t *testing.T) {
	long := strings.Repeat("word ", 200) + "unlimited liability " + strings.Repeat("más palabras ", 100) + "."
	i := strings.Index(long, "unlimited")
	ev := evidence(long, i, i+len("unlimited liability"))
	if len(ev) > MaxEvidenceChars || !strings.Contains(long, ev) || !strings.Contains(ev, "unlimited liability") {
		t.Fatalf("evidence %d bytes %q", len(ev), ev)
	}
}

func TestLowerSameLen(t *testing.T) {
	in := "Haftung ÜBER İstanbul ẞ"
	out := lowerSameLen(in)
	if len(out) != len(in) || !strings.HasPrefix(out, "haftung über") {
		t.Fatalf("lowerSameLen(%q) = %q", in, out)
	}
}
