package detect

import (
	"archive/zip"
	"bytes"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/reason"
)

func zipOf(t testing.TB, parts map[string]string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range parts {
		w, _ := zw.Create(name)
		w.Write([]byte(content))
	}
	zw.Close()
	return buf.Bytes()
}

// zipOfOrdered keeps entry order (ODF needs "mimetype" first, stored).
func zipOfOrdered(t testing.TB, kv ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(kv); i += 2 {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: kv[i], Method: zip.Store})
		w.Write([]byte(kv[i+1]))
	}
	zw.Close()
	return buf.Bytes()
}

const ctWord = `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`

func TestDetect(t *testing.T) {
	for _, c := range []struct {
		name   string
		raw    []byte
		format string
		class  string
	}{
		{"pdf", []byte("%PDF-1.7\n..."), PDF, ""},
		{"html", []byte("<!DOCTYPE html><html><body>x</body></html>"), HTML, ""},
		{"text", []byte("plain words\n"), Text, ""},
		{"utf16", []byte("\xff\xfeh\x00i\x00"), Text, ""},
		{"empty", []byte(" \n\t"), "", reason.Empty},
		{"png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "", reason.UnsupportedType},
		{"docx", zipOf(t, map[string]string{"[Content_Types].xml": ctWord, "word/document.xml": "<w:document/>"}), DOCX, ""},
		{"docx without its part", zipOf(t, map[string]string{"[Content_Types].xml": ctWord}), "", reason.NotOOXML},
		{"odt", zipOfOrdered(t, "mimetype", "application/vnd.oasis.opendocument.text", "content.xml", "<office:document-content/>"), "", reason.UnsupportedType},
		{"plain zip", zipOf(t, map[string]string{"readme.txt": "hi"}), "", reason.NotOOXML},
		{"macro content type", zipOf(t, map[string]string{"[Content_Types].xml": `<Types><Override PartName="/word/document.xml" ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>`, "word/document.xml": "<x/>"}), "", reason.MacroEnabled},
	} {
		res, err := Detect(c.raw, ooxml.Limits{})
		if res.Format != c.format || reason.ClassOf(err, "") != c.class {
			t.Errorf("%s: format %q class %q (%v), want %q %q", c.name, res.Format, reason.ClassOf(err, ""), err, c.format, c.class)
		}
	}
}

// FuzzDetect covers the sniffers that parse structure: the OLE2 directory
// walk and the ZIP/content-types checks.
func FuzzDetect(f *testing.F) {
	f.Add([]byte("%PDF-1.4"))
	f.Add(zipOf(f, map[string]string{"[Content_Types].xml": ctWord, "word/document.xml": "<w:document/>"}))
	for _, rel := range []string{"hostile/legacy-excel97.xls", "hostile/plain-zip-named.docx", "hostile/elf-binary.docx"} {
		f.Add(corpus.ReadFile(f, rel))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		res, err := Detect(raw, ooxml.Limits{MaxTotalBytes: 1 << 20, MaxEntryBytes: 1 << 20})
		if err == nil && res.Format == "" {
			t.Fatal("no format and no error")
		}
		if err != nil && reason.ClassOf(err, "") == "" {
			t.Fatalf("unclassified: %v", err)
		}
	})
}
