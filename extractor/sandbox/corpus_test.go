package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/platform/testenv"
)

// outcomeClass maps the manifest's outcome wording to reason classes, for
// the acceptable alternatives (a file's own outcome has reason_class).
var outcomeClass = map[string]string{
	"needs-ocr":                      reason.NeedsOCR,
	"reject: encrypted":              reason.Encrypted,
	"reject: corrupt pdf":            reason.CorruptPDF,
	"reject: unsupported type":       reason.UnsupportedType,
	"reject: zip bomb":               reason.ZipBomb,
	"reject: empty file":             reason.Empty,
	"reject: legacy format":          reason.LegacyFormat,
	"reject: macro-enabled document": reason.MacroEnabled,
	"reject: not an OOXML document":  reason.NotOOXML,
	"reject: too many zip entries":   reason.ZipEntries,
	"reject: xml nesting too deep":   reason.XMLDepth,
	"reject: DOCTYPE in OOXML":       reason.XMLDoctype,
}

// workerDeaths are classes that mean the worker, not the document, lost.
var workerDeaths = []string{reason.WorkerCrashed, reason.Timeout, reason.OutOfMemory, reason.OutputTooLarge, reason.Internal}

type corpusOutcome struct {
	file    corpus.File
	res     extract.Result
	usage   Usage
	err     error
	missing []string
}

// TestCorpus extracts every file of the shared corpus through the sandbox
// (a worker process per file) and checks the manifest's expectations:
// every phrase of every normal file (recall is logged per producer), the
// outcome of every hostile file, and that no worker died on any of them.
// The output cap is raised above the 50,000-row sheet's size so its tail
// phrases are checked too; TestTruncationFlag covers the default cap.
func TestCorpus(t *testing.T) {
	dir, m := corpus.MustLoad(t)
	// Every file in a process of its own, then with workers serving up to
	// 8 documents in turn: a hostile file must get its outcome either way,
	// and no file may be changed by the ones before it in its worker.
	for _, docs := range []int{1, 8} {
		t.Run(fmt.Sprintf("docs-per-worker=%d", docs), func(t *testing.T) {
			s := newSandbox(t, func(c *Config) {
				c.MaxDocs = docs
				c.Limits.MaxChars = 8_000_000
				if raceEnabled {
					// The worker would be this test binary, built with the
					// race detector, where the 50,000-row sheet alone takes
					// minutes: the race detector watches the sandbox's side
					// here, and the workers are the production build's (the
					// worker code runs under it in the other tests).
					c.Command, c.Env = []string{testenv.PrismBinary(t), WorkerSubcommand}, nil
				}
			})
			defer s.Close()
			runCorpus(t, s, dir, m)
		})
	}
}

// TestHostileCorpusRealWorker runs every hostile file of the corpus
// through the production worker, `prism extract-worker` of a prism binary
// built from this workspace, rather than this test binary re-executed:
// each must get the manifest's outcome, in a process of its own and in
// workers serving several files in turn.
func TestHostileCorpusRealWorker(t *testing.T) {
	start := time.Now()
	bin := testenv.PrismBinary(t)
	t.Logf("prism built in %s", time.Since(start).Round(time.Millisecond))
	dir, m := corpus.MustLoad(t)
	hostile := &corpus.Manifest{MatchRule: m.MatchRule}
	for _, f := range m.Files {
		if f.Kind == "hostile" {
			hostile.Files = append(hostile.Files, f)
		}
	}
	for _, docs := range []int{1, 8} {
		t.Run(fmt.Sprintf("docs-per-worker=%d", docs), func(t *testing.T) {
			s := newSandbox(t, func(c *Config) {
				c.Command, c.Env = []string{bin, WorkerSubcommand}, nil
				c.MaxDocs = docs
			})
			defer s.Close()
			runCorpus(t, s, dir, hostile)
		})
	}
}

func runCorpus(t *testing.T, s *Sandbox, dir string, m *corpus.Manifest) {
	if err := s.Warm(context.Background()); err != nil {
		t.Fatalf("warm PDFium: %v", err)
	}
	var (
		mu       sync.Mutex
		outcomes []corpusOutcome
	)
	t.Run("files", func(t *testing.T) {
		for _, f := range m.Files {
			t.Run(f.Path, func(t *testing.T) {
				t.Parallel()
				raw, err := os.ReadFile(filepath.Join(dir, f.Path))
				if err != nil {
					t.Fatal(err)
				}
				res, usage, err := s.Extract(context.Background(), bytes.NewReader(raw), int64(len(raw)))
				o := corpusOutcome{file: f, res: res, usage: usage, err: err}
				checkOutcome(t, &o)
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			})
		}
	})
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].file.Path < outcomes[j].file.Path })
	if table := recallTable(outcomes); table != "" {
		t.Log(table)
	}
	t.Log(hostileTable(outcomes))
}

func checkOutcome(t *testing.T, o *corpusOutcome) {
	f, res, err := o.file, o.res, o.err
	class := reason.ClassOf(err, "")
	if err != nil && class == "" {
		t.Fatalf("unclassified error: %v", err)
	}
	if slices.Contains(workerDeaths, class) {
		t.Fatalf("worker lost on %s: %s: %v", f.Path, class, err)
	}
	want := []string{f.Expect.Outcome}
	want = append(want, f.Expect.Acceptable...)
	ok := false
	for _, w := range want {
		switch {
		case w == "extract" && err == nil:
			phrases := f.Expect.Phrases
			if f.Kind == "hostile" && len(phrases) == 0 {
				phrases = f.Expect.PhrasesIfExtracted
			}
			phrases = append(slices.Clone(phrases), f.Expect.TailPhrases...)
			o.missing = corpus.NewMatcher(res.Text).Missing(phrases)
			ok = true
		case w == "partial" && err == nil && res.Truncated:
			ok = true
		case err != nil && (class == outcomeClass[w] || (w == f.Expect.Outcome && class == f.Expect.ReasonClass)):
			ok = true
		}
	}
	if !ok {
		t.Fatalf("%s: outcome %s (%v), want %q", f.Path, describe(res, err), err, want)
	}
	if err != nil {
		return
	}
	if len(o.missing) > 0 {
		t.Errorf("%s: missing phrases %q", f.Path, o.missing)
	}
	for _, bad := range f.Expect.MustNotContain {
		if strings.Contains(res.Text, bad) {
			t.Errorf("%s: extraction contains %q", f.Path, bad)
		}
	}
	if !utf8.ValidString(res.Text) {
		t.Errorf("%s: output is not valid UTF-8", f.Path)
	}
	if f.Kind != "normal" {
		return
	}
	if res.Format != f.Format {
		t.Errorf("%s: format %s, want %s", f.Path, res.Format, f.Format)
	}
	if f.Expect.Encoding != "" && !strings.HasPrefix(f.Expect.Encoding, res.Encoding) {
		t.Errorf("%s: encoding %s, want %s", f.Path, res.Encoding, f.Expect.Encoding)
	}
	if f.Expect.Pages > 0 && res.Pages != f.Expect.Pages {
		t.Errorf("%s: %d pages, want %d", f.Path, res.Pages, f.Expect.Pages)
	}
	if f.Expect.Sheets != nil && !slices.Equal(res.SheetNames, f.Expect.Sheets) {
		t.Errorf("%s: sheets %q, want %q", f.Path, res.SheetNames, f.Expect.Sheets)
	}
	if f.Expect.Language != "" && res.Language != f.Expect.Language {
		t.Errorf("%s: language %q, want %q", f.Path, res.Language, f.Expect.Language)
	}
}

func describe(res extract.Result, err error) string {
	if err != nil {
		return "reject: " + reason.ClassOf(err, "?")
	}
	if res.Truncated {
		return "extract (truncated)"
	}
	return "extract"
}

func recallTable(outcomes []corpusOutcome) string {
	type tally struct{ files, found, total int }
	by := map[string]*tally{}
	var all tally
	for _, o := range outcomes {
		if o.file.Kind != "normal" {
			continue
		}
		key := o.file.Producer.ID + " / " + o.file.Format
		tl := by[key]
		if tl == nil {
			tl = &tally{}
			by[key] = tl
		}
		n := len(o.file.Expect.Phrases) + len(o.file.Expect.TailPhrases)
		found := n - len(o.missing)
		if o.err != nil {
			found = 0
		}
		tl.files++
		tl.total += n
		tl.found += found
		all.files++
		all.total += n
		all.found += found
	}
	if all.files == 0 {
		return ""
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "\nrecall per producer (normal files, through the sandbox)\n%-34s %5s %9s %7s\n", "producer / format", "files", "phrases", "recall")
	for _, k := range keys {
		tl := by[k]
		fmt.Fprintf(&b, "%-34s %5d %4d/%-4d %6.1f%%\n", k, tl.files, tl.found, tl.total, 100*float64(tl.found)/float64(max(tl.total, 1)))
	}
	fmt.Fprintf(&b, "%-34s %5d %4d/%-4d %6.1f%%\n", "all", all.files, all.found, all.total, 100*float64(all.found)/float64(max(all.total, 1)))
	return b.String()
}

func hostileTable(outcomes []corpusOutcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nhostile files\n%-40s %-32s %-28s %8s %8s  %s\n", "file", "expected", "got", "wall", "rss", "message")
	for _, o := range outcomes {
		if o.file.Kind != "hostile" {
			continue
		}
		msg := ""
		if o.err != nil {
			msg = o.err.Error()
		} else if len(o.missing) == 0 {
			msg = "all expected phrases present"
		}
		if len(msg) > 110 {
			msg = msg[:110] + "..."
		}
		fmt.Fprintf(&b, "%-40s %-32s %-28s %8s %6dMB  %s\n", strings.TrimPrefix(o.file.Path, "hostile/"), o.file.Expect.Outcome,
			describe(o.res, o.err), o.usage.Wall.Round(time.Millisecond), o.usage.MaxRSS>>20, msg)
	}
	return b.String()
}

// TestTruncationFlag checks the default output cap on the 50,000-row
// sheet: the text stops at the cap and says so.
func TestTruncationFlag(t *testing.T) {
	raw := corpus.ReadFile(t, "large/risk-register-50k.openpyxl.xlsx")
	s := newSandbox(t, func(c *Config) { c.Limits.MaxChars = 1_000_000 })
	res, _, err := s.Extract(context.Background(), bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || res.Chars > 1_000_000 || !strings.HasPrefix(res.Text, "## Sheet: Register (A1:") {
		t.Fatalf("truncated=%v chars=%d head=%.60q", res.Truncated, res.Chars, res.Text)
	}
}
