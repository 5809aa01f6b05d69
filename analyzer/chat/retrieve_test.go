package chat_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer/chat"
	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/pdf"
)

// extracted runs the real extractor (in process) on a corpus file and
// returns the text and format the extracted event would carry.
func extracted(t *testing.T, x *extract.Extractor, name string) (text, format string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(corpus.MustDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	res, err := x.Extract(raw)
	if err != nil {
		t.Fatalf("extract %s: %v", name, err)
	}
	return res.Text, res.Format
}

// newExtractor shares the extractor tests' cache of compiled PDFium.
func newExtractor(t *testing.T) *extract.Extractor {
	x := extract.New(context.Background(), extract.Limits{},
		pdf.EngineConfig{CacheDir: filepath.Join(os.TempDir(), "prism-extractor-test-wazero")})
	t.Cleanup(x.Close)
	return x
}

// locate finds the line of text holding phrase and reads, independently
// of Split, the page or sheet marker above it.
func locate(t *testing.T, text, phrase string) (line, page int, sheet string) {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(l, "--- page "); ok {
			page, _ = strconv.Atoi(strings.Fields(rest)[0])
		}
		if rest, ok := strings.CutPrefix(l, "## Sheet: "); ok {
			sheet = rest[:strings.LastIndex(rest, " (")]
		}
		if strings.Contains(l, phrase) {
			return i + 1, page, sheet
		}
	}
	t.Fatalf("%q is on no line of the extracted text", phrase)
	return 0, 0, ""
}

// A question about a phrase of a real document finds, first, the passage
// holding it: its lines span the phrase's line, and its page (PDF) or
// sheet (XLSX) is the one the extractor's marker above that line names;
// the prompt's Where and the citation say the same.
func TestRetrievalFindsThePassageOnItsPageOrSheet(t *testing.T) {
	x := newExtractor(t)
	cases := []struct {
		file, question, phrase string
		where                  string // the Where must begin so
	}{
		{"vendor-contract/vendor-contract.libreoffice.pdf", "Must we indemnify the supplier even for its own negligence?",
			"including claims caused by the negligence of the Supplier", "page "},
		{"dpa-transfer/dpa-transfer.chromium.pdf", "How long is the objection window for new subprocessors?",
			"objection window of 10 calendar days", "page "},
		{"protokoll-lenkungskreis/protokoll-lenkungskreis.libreoffice.pdf", "Wurde das Budget 2024 eingehalten?",
			"48.500", "page "},
		{"vendor-contract/vendor-contract.openpyxl.xlsx", "What service credit applies to the document archive availability?",
			"Document archive | 99.0% availability", "sheet Service levels and credits, "},
		{"incident-report/incident-report.openpyxl.xlsx", "Which actions were taken on password reset?",
			"Password reset forced", "sheet "},
		{"vendor-contract/vendor-contract.pandoc.docx", "In what format is our data returned on termination?",
			"returns the Customer data in a format of its choice", "lines "},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			text, format := extracted(t, x, c.file)
			line, page, sheet := locate(t, text, c.phrase)
			got := chat.Retrieve(text, format, c.question, 5)
			if len(got) == 0 {
				t.Fatal("nothing retrieved")
			}
			top := got[0]
			cit := top.Citation
			if cit.StartLine > line || cit.EndLine < line || !strings.Contains(top.Prompt.Text, c.phrase) {
				t.Fatalf("top passage is lines %d-%d (%s):\n%s\nwant the one with %q (line %d)", cit.StartLine, cit.EndLine, top.Prompt.Where, top.Prompt.Text, c.phrase, line)
			}
			if cit.Page != page || cit.Sheet != sheet {
				t.Fatalf("top passage on page %d sheet %q, want page %d sheet %q", cit.Page, cit.Sheet, page, sheet)
			}
			if !strings.HasPrefix(top.Prompt.Where, c.where) || top.Prompt.Ref != 1 || cit.Ref != 1 ||
				!strings.Contains(top.Prompt.Where, strconv.Itoa(cit.StartLine)) {
				t.Fatalf("top passage where %q ref %d/%d, want %q... ref 1", top.Prompt.Where, top.Prompt.Ref, cit.Ref, c.where)
			}
			if page > 0 && !strings.HasPrefix(top.Prompt.Where, "page "+strconv.Itoa(page)+", ") {
				t.Fatalf("where %q, want page %d", top.Prompt.Where, page)
			}
			for i, r := range got {
				if r.Score <= 0 || (i > 0 && r.Score > got[i-1].Score) || r.Prompt.Ref != i+1 {
					t.Fatalf("passage %d: score %v ref %d; want positive, descending, numbered from 1", i, r.Score, r.Prompt.Ref)
				}
			}
		})
	}
}

// Passages: blank lines and headings begin new ones, pages and sheets
// too (their markers only in the formats that write them), and a long
// paragraph is cut at line boundaries near MaxPassageBytes, a long line
// at a word; line numbers stay those of the text.
func TestSplit(t *testing.T) {
	long := strings.Repeat("word ", 700) // one line of 3500 bytes
	var para []string
	for i := range 40 {
		para = append(para, "Line "+strconv.Itoa(i)+" of a long paragraph without blank lines in it at all.")
	}
	text := "--- page 1 ---\nIntro line\n\nSecond paragraph\n--- page 2 ---\n" + strings.Join(para, "\n") + "\n" + long + "\n"

	ps := chat.Split(text, "pdf")
	if ps[0].Text != "Intro line" || ps[0].StartLine != 2 || ps[0].Page != 1 || ps[1].StartLine != 4 || ps[1].Page != 1 {
		t.Fatalf("first passages %+v %+v", ps[0], ps[1])
	}
	covered := 0
	lines := strings.Split(text, "\n")
	for i, p := range ps[2:] {
		// Full: the next line (the next piece of a long line) would not
		// have fit, unless the paragraph ends.
		last := i == len(ps)-3
		full := p.EndLine == 45 || last || len(p.Text)+1+len(lines[p.EndLine]) > chat.MaxPassageBytes
		if p.StartLine == 46 {
			full = last || len(p.Text) > chat.MaxPassageBytes/2
		}
		if p.Page != 2 || len(p.Text) > chat.MaxPassageBytes || !full {
			t.Fatalf("passage %d-%d on page %d, %d bytes", p.StartLine, p.EndLine, p.Page, len(p.Text))
		}
		if p.StartLine <= 45 {
			covered += p.EndLine - p.StartLine + 1
			if p.Text != strings.Join(lines[p.StartLine-1:p.EndLine], "\n") {
				t.Fatalf("passage %d-%d is not those lines of the text", p.StartLine, p.EndLine)
			}
		}
	}
	if covered != 40 {
		t.Fatalf("the paragraph's 40 lines are covered %d times", covered)
	}
	if last := ps[len(ps)-1]; last.StartLine != 46 || last.EndLine != 46 || !strings.HasPrefix(last.Text, "word") {
		t.Fatalf("the long line's last piece %+v", last)
	}

	// A text file cannot claim pages.
	for _, p := range chat.Split(text, "txt") {
		if p.Page != 0 {
			t.Fatalf("a txt passage on page %d", p.Page)
		}
	}
	docx := chat.Split("# Terms\nOne\n## 3. Liability\nCapped at fees.\n", "docx")
	if len(docx) != 2 || docx[1].Section != "3. Liability" || docx[1].StartLine != 3 ||
		docx[1].Where() != `lines 3-4, under "3. Liability"` {
		t.Fatalf("docx passages %+v", docx)
	}
	xlsx := chat.Split("## Sheet: Budget (A1:B2)\na | b\nc | d\n## Sheet: Notes (empty, hidden)\n## Sheet: Risks (x) (A1:A1)\nr\n", "xlsx")
	if len(xlsx) != 2 || xlsx[0].Where() != "sheet Budget, lines 2-3" || xlsx[1].Sheet != "Risks (x)" || xlsx[1].Where() != "sheet Risks (x), line 6" {
		t.Fatalf("xlsx passages %+v", xlsx)
	}
}

// An answer's citations are the passages given that it cites by [n] or
// [n, m], in the order of their numbers; other numbers are ignored.
func TestCitedKeepsTheGivenPassagesTheAnswerUses(t *testing.T) {
	given := chat.Retrieve("--- page 1 ---\nalpha risk\n\nbeta risk\n\ngamma risk\n", "pdf", "risk", 5)
	if len(given) != 3 {
		t.Fatalf("retrieved %d passages, want 3", len(given))
	}
	got := chat.Cited("Gamma [3], alpha and beta [2, 1]; see also [7] and [x].", given)
	if len(got) != 3 || got[0].Ref != 1 || got[1].Ref != 2 || got[2].Ref != 3 || got[0] != given[0].Citation {
		t.Fatalf("cited %+v", got)
	}
	if none := chat.Cited("No sources.", given); none == nil || len(none) != 0 {
		t.Fatalf("cited %#v for an answer citing nothing, want an empty list", none)
	}
}
