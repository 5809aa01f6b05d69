package docx

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
)

func extract(raw []byte, max int) (Doc, string, error) {
	pkg, err := ooxml.Open(raw, ooxml.Limits{})
	if err != nil {
		return Doc{}, "", err
	}
	_, main, err := pkg.Identify()
	if err != nil {
		return Doc{}, "", err
	}
	out := textbuf.New(max)
	doc, err := Extract(pkg, main, out)
	return doc, out.String(), err
}

// build makes a minimal DOCX around a document body.
func build(t testing.TB, body string, extra map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	parts := map[string]string{
		"[Content_Types].xml": `<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`,
		"word/document.xml":   `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"><w:body>` + body + `</w:body></w:document>`,
	}
	for k, v := range extra {
		parts[k] = v
	}
	for name, content := range parts {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	zw.Close()
	return buf.Bytes()
}

func TestStructure(t *testing.T) {
	body := `<w:p><w:pPr><w:pStyle w:val="Heading2"/></w:pPr><w:r><w:t>Scope</w:t></w:r></w:p>` +
		`<w:p><w:r><w:t xml:space="preserve">Plain </w:t></w:r><w:r><w:t>text</w:t><w:tab/><w:t>tabbed</w:t></w:r></w:p>` +
		`<w:p><w:pPr><w:numPr><w:numId w:val="1"/></w:numPr></w:pPr><w:r><w:t>item</w:t></w:r></w:p>` +
		`<w:tbl><w:tr><w:tc><w:p><w:r><w:t>A1</w:t></w:r></w:p><w:p><w:r><w:t>more</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>B1</w:t></w:r></w:p>` +
		`<w:tbl><w:tr><w:tc><w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>y</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>` +
		`<w:p><w:r><mc:AlternateContent><mc:Choice><w:t>choice</w:t></mc:Choice><mc:Fallback><w:t>fallback</w:t></mc:Fallback></mc:AlternateContent></w:r></w:p>` +
		`<w:p><w:r><w:delText>deleted</w:delText><w:instrText>PAGE</w:instrText></w:r></w:p>`
	doc, text, err := extract(build(t, body, nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "## Scope\nPlain text\ttabbed\n- item\nA1 more | B1 / x | y\nchoice\n"
	if text != want || doc.Headings != 1 || doc.Tables != 2 {
		t.Fatalf("got %q %+v, want %q", text, doc, want)
	}
}

func TestCorpusHeadings(t *testing.T) {
	for _, f := range []string{"vendor-contract/vendor-contract.libreoffice.docx", "vendor-contract/vendor-contract.pandoc.docx", "vendor-contract/vendor-contract.python-docx.docx"} {
		doc, text, err := extract(corpus.ReadFile(t, f), 0)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !strings.Contains(text, "## 2. Term and renewal\n") || !strings.Contains(text, "R4 | 4.1 Indemnity | Customer indemnifies Supplier for Supplier negligence | High") {
			t.Errorf("%s: heading or table row missing:\n%s", f, text)
		}
		if doc.Title == "" {
			t.Errorf("%s: no title", f)
		}
	}
}

func TestHostile(t *testing.T) {
	for file, class := range map[string]string{
		"hostile/zip-bomb-understated-size.docx": reason.ZipBomb,
		"hostile/deep-nesting.docx":              reason.XMLDepth,
		"hostile/billion-laughs.docx":            reason.XMLDoctype,
		"hostile/external-entity.docx":           reason.XMLDoctype,
	} {
		_, text, err := extract(corpus.ReadFile(t, file), 0)
		if got := reason.ClassOf(err, ""); got != class {
			t.Errorf("%s: class %q (%v), want %q", file, got, err, class)
		}
		if strings.Contains(text, "root:x:0:0") {
			t.Errorf("%s: file content leaked", file)
		}
	}
}

func TestCap(t *testing.T) {
	_, text, err := extract(corpus.ReadFile(t, "vendor-contract/vendor-contract.pandoc.docx"), 100)
	if err != nil || len([]rune(text)) != 100 {
		t.Fatalf("cap: %d chars, %v", len([]rune(text)), err)
	}
}

func FuzzDOCX(f *testing.F) {
	f.Add(build(f, `<w:p><w:r><w:t>hello</w:t></w:r></w:p>`, nil))
	f.Add(build(f, `<w:tbl><w:tr><w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc></w:tr></w:tbl>`, nil))
	f.Add(build(f, `<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>h</w:t></w:r></w:p>`, nil))
	for _, rel := range []string{"protokoll-lenkungskreis/protokoll-lenkungskreis.pandoc.docx", "hostile/billion-laughs.docx", "hostile/deep-nesting.docx"} {
		f.Add(corpus.ReadFile(f, rel))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		pkg, err := ooxml.Open(raw, ooxml.Limits{MaxTotalBytes: 8 << 20, MaxEntryBytes: 4 << 20})
		if err != nil {
			return
		}
		_, main, err := pkg.Identify()
		if err != nil {
			return
		}
		out := textbuf.New(1 << 16)
		Extract(pkg, main, out)
		if out.Chars() > 1<<16 {
			t.Fatal("cap exceeded")
		}
	})
}
