package bedrocksim

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer/assessment"
)

func TestLexiconIsWellFormed(t *testing.T) {
	for _, r := range lexicon {
		if !slices.Contains(assessment.Categories, r.category) || !slices.Contains(assessment.Severities, r.severity) {
			t.Errorf("rule %q: bad category %q or severity %q", r.title, r.category, r.severity)
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
	files, _ := filepath.Glob("testdata/*.txt")
	terms := newMatcher(lexiconTerms())
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		a := analyze(string(raw), terms)
		if err := assessment.Validate(a, string(raw)); err != nil {
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
