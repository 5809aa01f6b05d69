package pdf

import (
	"sync"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
)

// minimalPDF is a one-page PDF with a text layer, written by hand.
const minimalPDF = "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n" +
	"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n" +
	"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>endobj\n" +
	"4 0 obj<</Length 44>>stream\nBT /F1 12 Tf 20 100 Td (Fuzz seed text) Tj ET\nendstream endobj\n" +
	"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n" +
	"trailer<</Root 1 0 R>>\n%%EOF\n"

func TestMinimalPDF(t *testing.T) {
	out := textbuf.New(0)
	if _, err := testEngine(t).Extract([]byte(minimalPDF), out, Limits{}); err != nil {
		t.Fatal(err)
	}
	if !corpus.NewMatcher(out.String()).Contains("Fuzz seed text") {
		t.Fatalf("got %q", out.String())
	}
}

// FuzzPDF feeds PDFium arbitrary bytes: every input must end in text or a
// classified error, within the output cap. A trap inside PDFium surfaces
// as an error from wazero, not a crash of the fuzzing process.
func FuzzPDF(f *testing.F) {
	f.Add([]byte(minimalPDF))
	f.Add([]byte("%PDF-1.7\n%%EOF"))
	for _, rel := range []string{"hostile/pages-tree-loop.pdf", "hostile/xref-prev-loop.pdf", "vendor-contract/vendor-contract.reportlab.pdf"} {
		f.Add(corpus.ReadFile(f, rel))
	}
	eng := testEngine(f)
	var mu sync.Mutex // one PDFium instance, one call at a time
	f.Fuzz(func(t *testing.T, raw []byte) {
		mu.Lock()
		defer mu.Unlock()
		out := textbuf.New(1 << 16)
		_, err := eng.Extract(raw, out, Limits{MaxPages: 50, MaxObjects: 10000})
		if err != nil && reason.ClassOf(err, "") == "" {
			t.Fatalf("unclassified error: %v", err)
		}
		if out.Chars() > 1<<16 {
			t.Fatal("cap exceeded")
		}
	})
}
