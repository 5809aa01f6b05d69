package extractor

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/sandbox"
)

// recorder stands in for the sandbox to see what is routed to it.
type recorder struct{ got [][]byte }

func (r *recorder) Extract(ctx context.Context, doc io.Reader, size int64) (extract.Result, sandbox.Usage, error) {
	b, _ := io.ReadAll(doc)
	r.got = append(r.got, b)
	return extract.Result{Format: "sandboxed"}, sandbox.Usage{}, nil
}

func TestPlainTextStaysInProcessEverythingElseIsSandboxed(t *testing.T) {
	read := func(rel string) []byte { return corpus.ReadFile(t, rel) }
	cases := []struct {
		name      string
		raw       []byte
		inProcess bool
	}{
		{"utf8 text", read("vendor-contract/vendor-contract.pandoc.txt"), true},
		{"utf16 text", read("dpa-transfer/dpa-transfer.libreoffice-utf16.txt"), true},
		{"cp1252 text", read("incident-report/incident-report.libreoffice-cp1252.txt"), true},
		{"csv", read("incident-report/incident-report.csv"), true},
		{"markdown", read("incident-report/incident-report.md"), true},
		{"html", read("incident-report/incident-report.pandoc.html"), false},
		{"docx", read("incident-report/incident-report.pandoc.docx"), false},
		{"pdf", read("incident-report/incident-report.reportlab.pdf"), false},
		{"zip bomb", read("hostile/zip-bomb.docx"), false},
		{"elf", read("hostile/elf-binary.docx"), false},
	}
	for _, c := range cases {
		rec := &recorder{}
		p := &PlainTextInProcess{Next: rec, Limits: extract.DefaultLimits(), MaxBytes: 1 << 20}
		res, _, err := p.Extract(context.Background(), bytes.NewReader(c.raw), int64(len(c.raw)))
		sandboxed := len(rec.got) == 1
		if sandboxed == c.inProcess {
			t.Errorf("%s: in process = %v, want %v", c.name, !sandboxed, c.inProcess)
			continue
		}
		if sandboxed && !bytes.Equal(rec.got[0], c.raw) {
			t.Errorf("%s: the sandbox got other bytes than the document", c.name)
		}
		if !sandboxed && (err != nil || res.Text == "") {
			t.Errorf("%s: in-process extraction failed: %v", c.name, err)
		}
	}
	// Over the size limit, even text goes to the sandbox.
	rec := &recorder{}
	p := &PlainTextInProcess{Next: rec, Limits: extract.DefaultLimits(), MaxBytes: 10}
	_, _, _ = p.Extract(context.Background(), bytes.NewReader([]byte("plain but too long")), 18)
	if len(rec.got) != 1 {
		t.Fatal("a document over MaxBytes was not sandboxed")
	}
}
