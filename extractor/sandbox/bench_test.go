package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/reason"
)

type benchDoc struct {
	path string
	raw  []byte
}

func benchCorpus(b *testing.B) (map[string][]benchDoc, []benchDoc) {
	dir, m := corpus.MustLoad(b)
	byFormat := map[string][]benchDoc{}
	var all []benchDoc
	for _, f := range m.Files {
		if f.Kind != "normal" || filepath.Dir(f.Path) == "large" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, f.Path))
		if err != nil {
			b.Fatal(err)
		}
		d := benchDoc{f.Path, raw}
		byFormat[f.Format] = append(byFormat[f.Format], d)
		all = append(all, d)
	}
	return byFormat, all
}

// BenchmarkExtract extracts the corpus's normal documents of each format
// one after another, each in its own worker process, and reports MB/s
// (of originals), documents/s and the workers' peak RSS. The cost per
// document is dominated by starting the worker (and PDFium for PDFs).
//
//	go test ./sandbox -run '^$' -bench Extract -benchtime 3x
func BenchmarkExtract(b *testing.B) {
	byFormat, all := benchCorpus(b)
	s := newSandbox(b, nil)
	if err := s.Warm(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{"pdf", "docx", "xlsx", "txt", "csv", "markdown", "html"} {
		docs := byFormat[format]
		b.Run(format, func(b *testing.B) { benchDocs(b, s, docs, 1) })
	}
	b.Run("all-parallel", func(b *testing.B) { benchDocs(b, s, all, s.cfg.Workers) })
}

func benchDocs(b *testing.B, s *Sandbox, docs []benchDoc, parallel int) {
	var size int64
	for _, d := range docs {
		size += int64(len(d.raw))
	}
	b.SetBytes(size)
	b.ResetTimer()
	var (
		mu   sync.Mutex
		peak int64
	)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		work := make(chan benchDoc)
		var wg sync.WaitGroup
		for w := 0; w < parallel; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for d := range work {
					_, u, err := s.Extract(context.Background(), bytes.NewReader(d.raw), int64(len(d.raw)))
					if err != nil {
						b.Errorf("%s: %v", d.path, err)
					}
					mu.Lock()
					peak = max(peak, u.MaxRSS)
					mu.Unlock()
				}
			}()
		}
		for _, d := range docs {
			work <- d
		}
		close(work)
		wg.Wait()
	}
	elapsed := time.Since(start)
	b.ReportMetric(float64(len(docs)*b.N)/elapsed.Seconds(), "docs/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
}

// BenchmarkPeakMemory reports the worker's peak RSS (rusage Maxrss) and
// wall time for the expensive cases: zip bombs (refused before and while
// inflating), the 40-page PDF and the 50,000-row sheet (fully extracted:
// the output cap is raised above its 6.3 million characters).
//
//	go test ./sandbox -run '^$' -bench PeakMemory -benchtime 3x
func BenchmarkPeakMemory(b *testing.B) {
	s := newSandbox(b, func(c *Config) { c.Limits.MaxChars = 8_000_000 })
	if err := s.Warm(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, path, class string }{
		{"zip-bomb", "hostile/zip-bomb.docx", reason.ZipBomb},
		{"zip-bomb-understated", "hostile/zip-bomb-understated-size.docx", reason.ZipBomb},
		{"shared-strings-bomb", "hostile/shared-strings-bomb.xlsx", reason.ZipBomb},
		{"pdf-40-pages", "large/vendor-contract.long.libreoffice.pdf", ""},
		{"xlsx-50k-rows", "large/risk-register-50k.openpyxl.xlsx", ""},
	} {
		raw := corpus.ReadFile(b, c.path)
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			var peak int64
			var chars int
			for i := 0; i < b.N; i++ {
				res, u, err := s.Extract(context.Background(), bytes.NewReader(raw), int64(len(raw)))
				if got := reason.ClassOf(err, ""); got != c.class || (c.class == "" && err != nil) {
					b.Fatalf("%s: %v", c.path, err)
				}
				peak = max(peak, u.MaxRSS)
				chars = res.Chars
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
			b.ReportMetric(float64(chars), "chars")
		})
	}
}
