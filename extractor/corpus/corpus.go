// Package corpus loads the shared document corpus (manifest.json) and
// implements its phrase match rule, for the extractor's tests and
// benchmarks.
package corpus

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiprism/prism/platform/spaces"
	"github.com/aiprism/prism/platform/testenv/workspace"

	"golang.org/x/text/unicode/norm"
)

// Manifest is the part of manifest.json the tests read.
type Manifest struct {
	MatchRule string `json:"match_rule"`
	Files     []File `json:"files"`
}

// File is one corpus document.
type File struct {
	Path         string   `json:"path"`
	Format       string   `json:"format"`
	LibmagicMIME string   `json:"libmagic_mime"`
	Producer     Producer `json:"producer"`
	SourceText   *string  `json:"source_text"`
	Kind         string   `json:"kind"` // normal or hostile
	Size         int64    `json:"size"`
	Expect       Expect   `json:"expect"`
}

// Producer is the tool that made a file; recall is counted per ID.
type Producer struct {
	ID      string `json:"id"`
	Tool    string `json:"tool"`
	Version string `json:"version"`
}

// Expect is what an extraction of the file must give.
type Expect struct {
	Outcome            string   `json:"outcome"` // extract, needs-ocr, "reject: ..."
	ReasonClass        string   `json:"reason_class"`
	Acceptable         []string `json:"acceptable"`
	Phrases            []string `json:"phrases"`
	TailPhrases        []string `json:"tail_phrases"`
	PhrasesIfExtracted []string `json:"phrases_if_extracted"`
	MustNotContain     []string `json:"must_not_contain"`
	Language           string   `json:"language"`
	Encoding           string   `json:"encoding"`
	Pages              int      `json:"pages"`
	Sheets             []string `json:"sheets"`
	ValidUTF8          bool     `json:"output_must_be_valid_utf8"`
}

// DirEnv names the corpus directory, overriding the default.
const DirEnv = "PRISM_CORPUS_DIR"

// Dir finds the corpus: $PRISM_CORPUS_DIR, else ../shared/corpus beside
// the repository (its root holds go.work; found by walking up from the
// working directory, so any module's tests find it). It returns an error
// naming where it looked when the corpus is absent.
func Dir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return checkDir(d)
	}
	root, err := workspace.Root()
	if err != nil {
		return "", fmt.Errorf("%w; set %s", err, DirEnv)
	}
	return checkDir(filepath.Join(root, "..", "shared", "corpus"))
}

// MustDir is Dir for tests and benchmarks: CI always has the corpus, so
// a missing one fails the test (a skipped test would check nothing).
func MustDir(tb testing.TB) string {
	tb.Helper()
	dir, err := Dir()
	if err != nil {
		tb.Fatalf("corpus not available: %v", err)
	}
	return dir
}

// MustLoad finds and loads the corpus for a test, failing it when the
// corpus is missing or its manifest unreadable.
func MustLoad(tb testing.TB) (string, *Manifest) {
	tb.Helper()
	dir := MustDir(tb)
	m, err := Load(dir)
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	return dir, m
}

func checkDir(d string) (string, error) {
	if _, err := os.Stat(filepath.Join(d, "manifest.json")); err != nil {
		return "", fmt.Errorf("no corpus at %s (set %s to its directory): %w", d, DirEnv, err)
	}
	return filepath.Abs(d)
}

// Load reads dir/manifest.json.
func Load(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	return &m, nil
}

// Normalize applies the manifest's match rule to s: Unicode NFKC, then
// every run of whitespace collapsed to one space.
func Normalize(s string) string { return spaces.Collapse(norm.NFKC.String(s)) }

// Matcher checks phrases against one extraction.
type Matcher struct{ text string }

// NewMatcher normalizes text once for many phrase checks.
func NewMatcher(text string) Matcher { return Matcher{text: Normalize(text)} }

// Contains reports whether phrase occurs under the match rule.
func (m Matcher) Contains(phrase string) bool {
	return strings.Contains(m.text, Normalize(phrase))
}

// Missing returns the phrases that do not occur.
func (m Matcher) Missing(phrases []string) []string {
	var out []string
	for _, p := range phrases {
		if !m.Contains(p) {
			out = append(out, p)
		}
	}
	return out
}

// ReadFile reads a corpus file for a test, failing it when the corpus
// or the file is missing.
func ReadFile(tb testing.TB, rel string) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(MustDir(tb), rel))
	if err != nil {
		tb.Fatalf("corpus: %v", err)
	}
	return raw
}
