package xlsx

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
	"github.com/xuri/excelize/v2"
)

func extract(raw []byte, max int) (Doc, string, bool, error) {
	pkg, err := ooxml.Open(raw, ooxml.Limits{})
	if err != nil {
		return Doc{}, "", false, err
	}
	if _, _, err := pkg.Identify(); err != nil {
		return Doc{}, "", false, err
	}
	out := textbuf.New(max)
	doc, err := Extract(raw, pkg, out, Limits{TmpDir: os.TempDir()})
	return doc, out.String(), out.Truncated(), err
}

func book(tb testing.TB) []byte {
	f := excelize.NewFile()
	f.SetSheetName("Sheet1", "Risks")
	f.SetCellValue("Risks", "B2", "Ref")
	f.SetCellValue("Risks", "C2", "Issue\nwith break")
	f.SetCellValue("Risks", "B4", "R1")
	f.SetCellValue("Risks", "D4", 42)
	f.NewSheet("Empty")
	f.SetDocProps(&excelize.DocProperties{Title: "Register", Creator: "Risk Office"})
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestSheetsAndRanges(t *testing.T) {
	doc, text, _, err := extract(book(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "## Sheet: Risks (B2:D4)\n | Ref | Issue with break\n | R1 |  | 42\n## Sheet: Empty (empty)\n"
	if text != want {
		t.Fatalf("got %q\nwant %q", text, want)
	}
	if doc.Title != "Register" || doc.Author != "Risk Office" || len(doc.Sheets) != 2 || doc.Rows != 2 {
		t.Fatalf("doc = %+v", doc)
	}
}

func TestColumn(t *testing.T) {
	for n, want := range map[int]string{1: "A", 26: "Z", 27: "AA", 52: "AZ", 703: "AAA"} {
		if got := column(n); got != want {
			t.Errorf("column(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestLargeSheet(t *testing.T) {
	if testing.Short() {
		t.Skip("large sheet")
	}
	raw := corpus.ReadFile(t, "large/risk-register-50k.openpyxl.xlsx")
	doc, text, truncated, err := extract(raw, 8_000_000)
	if err != nil || truncated {
		t.Fatalf("err=%v truncated=%v", err, truncated)
	}
	m := corpus.NewMatcher(text)
	if miss := m.Missing([]string{"Business unit", "RR-000001", "RR-025000", "RR-050000", "Final register entry closes the enterprise review for the public corpus"}); len(miss) > 0 {
		t.Fatalf("missing %q", miss)
	}
	if !strings.HasPrefix(text, "## Sheet: Register (A1:H50001)\n") || len(doc.Sheets) != 2 {
		t.Fatalf("header: %.80q, sheets %v", text, doc.Sheets)
	}
	_, text, truncated, err = extract(raw, 100_000)
	if err != nil || !truncated || len([]rune(text)) > 100_000 {
		t.Fatalf("capped: err=%v truncated=%v len=%d", err, truncated, len([]rune(text)))
	}
}

func TestSharedStringsBomb(t *testing.T) {
	_, _, _, err := extract(corpus.ReadFile(t, "hostile/shared-strings-bomb.xlsx"), 0)
	if reason.ClassOf(err, "") != reason.ZipBomb {
		t.Fatalf("got %v", err)
	}
}

func FuzzXLSX(f *testing.F) {
	f.Add(book(f))
	for _, rel := range []string{"protokoll-lenkungskreis/protokoll-lenkungskreis.openpyxl.xlsx", "protokoll-lenkungskreis/protokoll-lenkungskreis.libreoffice-calc.xlsx"} {
		f.Add(corpus.ReadFile(f, rel))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pkg, err := ooxml.Open(raw, ooxml.Limits{MaxTotalBytes: 8 << 20, MaxEntryBytes: 4 << 20})
		if err != nil {
			return
		}
		if kind, _, err := pkg.Identify(); err != nil || kind != ooxml.Excel {
			return
		}
		out := textbuf.New(1 << 16)
		Extract(raw, pkg, out, Limits{TmpDir: t.TempDir()})
		if out.Chars() > 1<<16 {
			t.Fatal("cap exceeded")
		}
	})
}
