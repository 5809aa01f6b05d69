package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Doc is one document the simulated users upload.
type Doc struct {
	Name    string
	Content []byte
}

// LoadCorpus reads the text-based documents of the shared corpus (txt,
// md, csv, html in UTF-8): formats a copy can be made unique by appending a
// line, so the analyzer's result cache does not hide the model path.
// Without a corpus it falls back to generated contracts.
func LoadCorpus(dir string) []Doc {
	var docs []Doc
	paths, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	sort.Strings(paths)
	for _, p := range paths {
		base := filepath.Base(p)
		if strings.Contains(p, string(filepath.Separator)+"hostile"+string(filepath.Separator)) ||
			strings.Contains(p, string(filepath.Separator)+"large"+string(filepath.Separator)) ||
			strings.Contains(base, "utf16") || strings.Contains(base, "cp1252") {
			continue
		}
		switch filepath.Ext(base) {
		case ".txt", ".md", ".csv", ".html":
		default:
			continue
		}
		raw, err := os.ReadFile(p)
		if err == nil && len(raw) > 0 && len(raw) < 256<<10 {
			docs = append(docs, Doc{Name: base, Content: raw})
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

// unique returns doc's content made unique for upload number n.
func unique(doc Doc, n int) []byte {
	out := make([]byte, 0, len(doc.Content)+40)
	out = append(out, doc.Content...)
	return append(out, fmt.Sprintf("\n\nBenchmark copy %d.\n", n)...)
}
