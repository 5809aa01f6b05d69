package extract

import (
	"context"
	"testing"

	"github.com/aiprism/prism/extractor/pdf"
	"github.com/aiprism/prism/extractor/reason"
)

func TestNormalize(t *testing.T) {
	in := "\ufeffTitle  \r\n\n\n\nBody\x00 text\x07 \u00a0\n\fNext\tcell\n\n"
	want := "Title\n\nBody text\n Next\tcell\n"
	if got := Normalize(in); got != want {
		t.Fatalf("Normalize = %q, want %q", got, want)
	}
	if got := Normalize("bad \xff byte"); got != "bad \uFFFD byte\n" {
		t.Fatalf("invalid UTF-8: %q", got)
	}
}

func TestExtract(t *testing.T) {
	x := New(context.Background(), Limits{MaxChars: 40}, pdf.EngineConfig{})
	defer x.Close()
	res, err := x.Extract([]byte("<html><head><title>T</title></head><body><h2>Scope</h2><p>The Supplier shall indemnify the Customer.</p></body></html>"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != "html" || res.Title != "T" || !res.Truncated || res.Chars > 41 || res.Text != "## Scope\nThe Supplier shall indemnify th\n" {
		t.Fatalf("res = %+v", res)
	}
	if _, err := x.Extract([]byte("<html><body><script>x()</script></body></html>")); reason.ClassOf(err, "") != reason.Empty {
		t.Fatalf("no text: %v", err)
	}
	if _, err := x.Extract(make([]byte, 200<<20)); reason.ClassOf(err, "") != reason.TooLarge {
		t.Fatalf("too large: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	l := Limits{MaxChars: 5, PDF: pdf.Limits{MaxPages: 3}}.WithDefaults()
	if l.MaxChars != 5 || l.PDF.MaxPages != 3 || l.PDF.MaxObjects != DefaultLimits().PDF.MaxObjects || l.Zip.MaxEntries != DefaultLimits().Zip.MaxEntries || l.MaxInputBytes != DefaultLimits().MaxInputBytes {
		t.Fatalf("WithDefaults = %+v", l)
	}
}
