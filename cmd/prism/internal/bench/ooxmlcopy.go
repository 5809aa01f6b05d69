package bench

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// markDOCX adds text as a last paragraph of the document body.
func markDOCX(raw []byte, text string) ([]byte, error) {
	return rewriteZip(raw, "word/document.xml", func(part []byte) ([]byte, error) {
		para := []byte("<w:p><w:r><w:t>" + escapeXML(text) + "</w:t></w:r></w:p>")
		// The body's own section properties must stay its last child; a
		// <w:sectPr> followed by </w:p> belongs to a paragraph instead.
		at := bytes.LastIndex(part, []byte("<w:sectPr"))
		if at < 0 || bytes.Contains(part[at:], []byte("</w:p>")) {
			at = bytes.LastIndex(part, []byte("</w:body>"))
		}
		if at < 0 {
			return nil, errors.New("word/document.xml has no <w:body>")
		}
		return splice(part, at, para), nil
	})
}

// rowNumber finds the r attribute of a worksheet row.
var rowNumber = regexp.MustCompile(`<row\b[^>]*?\sr="(\d+)"`)

// markXLSX adds a row below the last one of the first worksheet, with text
// in an inline string cell (no shared string table to keep consistent).
func markXLSX(raw []byte, text string) ([]byte, error) {
	return rewriteZip(raw, "xl/worksheets/sheet1.xml", func(part []byte) ([]byte, error) {
		at := bytes.LastIndex(part, []byte("</sheetData>"))
		if at < 0 {
			return nil, errors.New("xl/worksheets/sheet1.xml has no rows")
		}
		last := 0
		for _, m := range rowNumber.FindAllSubmatch(part[:at], -1) {
			n, _ := strconv.Atoi(string(m[1]))
			last = max(last, n)
		}
		r := last + 1
		row := fmt.Sprintf(`<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c></row>`, r, r, escapeXML(text))
		return splice(part, at, []byte(row)), nil
	})
}

// rewriteZip copies a ZIP package entry by entry, passing the entry named
// part through edit; the other entries are copied without recompressing.
func rewriteZip(raw []byte, part string, edit func([]byte) ([]byte, error)) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	var out bytes.Buffer
	out.Grow(len(raw) + 1024)
	zw := zip.NewWriter(&out)
	found := false
	for _, f := range zr.File {
		if f.Name != part {
			if err := zw.Copy(f); err != nil {
				return nil, fmt.Errorf("copy %s: %w", f.Name, err)
			}
			continue
		}
		found = true
		if err := rewriteEntry(zw, f, edit); err != nil {
			return nil, fmt.Errorf("rewrite %s: %w", f.Name, err)
		}
	}
	if !found {
		return nil, fmt.Errorf("the package has no %s", part)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close package: %w", err)
	}
	return out.Bytes(), nil
}

func rewriteEntry(zw *zip.Writer, f *zip.File, edit func([]byte) ([]byte, error)) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	content, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return err
	}
	if content, err = edit(content); err != nil {
		return err
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: f.Modified})
	if err != nil {
		return err
	}
	_, err = w.Write(content)
	return err
}

// splice returns b with ins inserted at i.
func splice(b []byte, i int, ins []byte) []byte {
	out := make([]byte, 0, len(b)+len(ins))
	out = append(out, b[:i]...)
	out = append(out, ins...)
	return append(out, b[i:]...)
}

func escapeXML(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
