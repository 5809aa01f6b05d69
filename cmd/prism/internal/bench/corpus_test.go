package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/pdf"
	"github.com/aiprism/prism/platform/spaces"
)

// TestUniqueCopiesExtract runs two copies of every document LoadCorpus
// gives through the extractor's own code: both must extract, each with
// its own marker, the two texts must differ (or the analyzer's result
// cache would serve the second), and the original's phrases must stay.
func TestUniqueCopiesExtract(t *testing.T) {
	dir := corpus.MustDir(t)
	phrases := manifestPhrases(t, dir)
	docs := LoadCorpus(dir)
	checkEveryCandidateLoaded(t, dir, docs)
	x := extract.New(context.Background(), extract.Limits{}, pdf.EngineConfig{
		// Shared with the extractor's tests: PDFium compiles once per machine.
		CacheDir: filepath.Join(os.TempDir(), "prism-extractor-test-wazero"),
	})
	defer x.Close()
	formats := map[string]int{}
	for _, doc := range docs {
		formats[strings.TrimPrefix(filepath.Ext(doc.Name), ".")]++
		t.Run(doc.Name, func(t *testing.T) { checkCopies(t, x, doc, phrases[doc.Name]) })
	}
	for _, f := range []string{"pdf", "docx", "xlsx", "txt", "md", "csv", "html"} {
		if formats[f] == 0 {
			t.Errorf("no %s document in the mix", f)
		}
	}
	t.Logf("%d documents: %s", len(docs), mix(formats))
}

func checkCopies(t *testing.T, x *extract.Extractor, doc Doc, phrases []string) {
	orig, err := x.Extract(doc.Content)
	if err != nil {
		t.Fatalf("original: %v", err)
	}
	kept := present(orig.Text, phrases)
	if len(kept) == 0 {
		t.Fatalf("none of the manifest's %d phrases is in the original's text", len(phrases))
	}
	var texts []string
	for _, n := range []int{17, firstSSE + 18} {
		content, err := unique(doc, n)
		if err != nil {
			t.Fatal(err)
		}
		res, err := x.Extract(content)
		if err != nil {
			t.Fatalf("copy %d: %v", n, err)
		}
		if res.Format != orig.Format {
			t.Errorf("copy %d is %s, the original %s", n, res.Format, orig.Format)
		}
		text := spaces.Collapse(res.Text)
		if !strings.Contains(text, marker(n)) {
			t.Errorf("copy %d lacks %q; its text ends %q", n, marker(n), text[max(0, len(text)-200):])
		}
		if lost := len(corpus.NewMatcher(res.Text).Missing(kept)); lost > 0 {
			t.Errorf("copy %d lost %d of the original's %d phrases", n, lost, len(kept))
		}
		if filepath.Ext(doc.Name) == ".pdf" {
			checkPDFUpdate(t, content)
			if res.Pages != orig.Pages+1 {
				t.Errorf("copy %d has %d pages, the original %d", n, res.Pages, orig.Pages)
			}
		}
		if len(content) > len(doc.Content)+4096 {
			t.Errorf("copy %d is %d bytes, the original %d", n, len(content), len(doc.Content))
		}
		texts = append(texts, res.Text)
	}
	if texts[0] == texts[1] {
		t.Error("two copies extract to the same text")
	}
}

// checkPDFUpdate checks that every cross-reference entry of a copy, the
// update's and the original's, points at its object: PDFium would
// silently repair a wrong table, so its reading the copy proves little.
func checkPDFUpdate(t *testing.T, content []byte) {
	t.Helper()
	x, err := readXref(content)
	if err != nil {
		t.Fatal(err)
	}
	for num, off := range x.offsets {
		if off >= 0 {
			if _, err := x.object(content, pdfRef{num: num}); err != nil {
				t.Error(err)
			}
		}
	}
}

// present are the phrases text contains, by the manifest's match rule.
func present(text string, phrases []string) []string {
	m := corpus.NewMatcher(text)
	var out []string
	for _, p := range phrases {
		if m.Contains(p) {
			out = append(out, p)
		}
	}
	return out
}

// checkEveryCandidateLoaded fails when LoadCorpus left out a document it
// should take, such as one whose structure the copier does not handle.
func checkEveryCandidateLoaded(t *testing.T, dir string, docs []Doc) {
	loaded := map[string]bool{}
	for _, d := range docs {
		loaded[d.Name] = true
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if !corpusCandidate(p) {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if wantedContent(p, raw) && !loaded[filepath.Base(p)] {
			t.Errorf("LoadCorpus left out %s", p)
		}
	}
}

// manifestPhrases maps each corpus file's name to the phrases a correct
// extraction contains.
func manifestPhrases(t *testing.T, dir string) map[string][]string {
	m, err := corpus.Load(dir)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	out := map[string][]string{}
	for _, f := range m.Files {
		out[filepath.Base(f.Path)] = f.Expect.Phrases
	}
	return out
}
