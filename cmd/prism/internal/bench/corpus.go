package bench

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Doc is one document the simulated users upload.
type Doc struct {
	Name    string
	Content []byte
}

// maxCorpusFile leaves out the corpus's large documents: the benchmark
// measures the pipeline on documents people typically upload.
const maxCorpusFile = 256 << 10

// wantedContent: a candidate file's content is used when it is not empty,
// small enough, and (for text formats) UTF-8.
func wantedContent(path string, raw []byte) bool {
	return len(raw) > 0 && len(raw) < maxCorpusFile && (!isText(path) || utf8.Valid(raw))
}

// LoadCorpus reads the documents of the shared corpus that a copy can be
// made unique for (see unique): text formats in UTF-8, PDF, DOCX and XLSX,
// leaving out the hostile and large folders. Without a corpus it falls
// back to generated contracts.
func LoadCorpus(dir string) []Doc {
	var docs []Doc
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	sort.Strings(paths)
	for _, p := range paths {
		if !corpusCandidate(p) {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil || !wantedContent(p, raw) {
			continue
		}
		doc := Doc{Name: filepath.Base(p), Content: raw}
		// A document the copier cannot mark would be uploaded with the
		// same text again and again, and the result cache would hide the
		// model path.
		if _, err := unique(doc, 0); err == nil {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		for i := range 4 {
			docs = append(docs, Doc{Name: fmt.Sprintf("contract-%d.txt", i), Content: []byte(fmt.Sprintf(
				"AGREEMENT %d\n1. Liability. The Customer accepts unlimited liability for all damages.\n2. Indemnity. The Customer shall indemnify the Supplier against claims.\n", i))})
		}
	}
	return docs
}

// corpusCandidate tells whether the file at path is a normal document of a
// format unique handles. Text in UTF-16 or Windows-1252 is left out (as is
// any text not in UTF-8): the copies must keep the original's encoding.
func corpusCandidate(path string) bool {
	dir := filepath.Base(filepath.Dir(path))
	base := filepath.Base(path)
	if dir == "hostile" || dir == "large" || strings.Contains(base, "utf16") || strings.Contains(base, "cp1252") {
		return false
	}
	switch filepath.Ext(base) {
	case ".pdf", ".docx", ".xlsx":
		return true
	}
	return isText(base)
}

func isText(name string) bool {
	switch filepath.Ext(name) {
	case ".txt", ".md", ".csv", ".html":
		return true
	}
	return false
}

// marker is the text that makes copy n unique.
func marker(n int) string { return fmt.Sprintf("Benchmark copy %d.", n) }

// unique returns a copy of doc, of the same format, whose extracted text
// contains marker(n). Copies must differ in their text, not only in their
// bytes: the analyzer's result cache is keyed by the extracted text, so a
// repeated text would skip the model and falsify the measurement.
func unique(doc Doc, n int) ([]byte, error) {
	text := marker(n)
	var (
		out []byte
		err error
	)
	switch filepath.Ext(doc.Name) {
	case ".pdf":
		out, err = markPDF(doc.Content, text)
	case ".docx":
		out, err = markDOCX(doc.Content, text)
	case ".xlsx":
		out, err = markXLSX(doc.Content, text)
	case ".csv":
		out, err = markCSV(doc.Content, text)
	default:
		out = markText(doc.Content, text)
	}
	if err != nil {
		return nil, fmt.Errorf("copy %d of %s: %w", n, doc.Name, err)
	}
	return out, nil
}

// markText appends the marker as a paragraph of its own: text, Markdown
// and HTML (text after the body is still read).
func markText(raw []byte, text string) []byte {
	out := make([]byte, 0, len(raw)+len(text)+4)
	out = append(out, raw...)
	return append(out, "\n\n"+text+"\n"...)
}

// markCSV appends the marker as a record with as many fields as the first
// one: a record of another length would make the file read as plain text.
func markCSV(raw []byte, text string) ([]byte, error) {
	for _, delim := range []rune{',', ';', '\t'} {
		r := csv.NewReader(bytes.NewReader(raw))
		r.Comma = delim
		first, err := r.Read()
		if err != nil || len(first) < 2 {
			continue
		}
		out := make([]byte, 0, len(raw)+len(text)+len(first)+2)
		out = append(out, raw...)
		if !bytes.HasSuffix(out, []byte("\n")) {
			out = append(out, '\n')
		}
		out = append(out, text...)
		out = append(out, strings.Repeat(string(delim), len(first)-1)...)
		return append(out, '\n'), nil
	}
	return nil, errors.New("no delimiter gives a first record of two or more fields")
}
