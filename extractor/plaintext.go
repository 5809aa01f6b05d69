package extractor

import (
	"bytes"
	"context"
	"io"
	"strings"
	"time"

	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/pdf"
	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/gabriel-vasile/mimetype"
)

// PlainTextInProcess extracts small plain-text documents (text, CSV,
// Markdown) in this process and hands everything else to next (the
// sandbox).
//
// Why this is safe: the sandbox exists for parsers of structured hostile
// input (PDF, ZIP containers, XML, HTML), where a stack overflow or a
// memory blow-up cannot be recovered in Go. Decoding plain text is one
// bounded, linear pass over at most MaxBytes with a capped output, and the
// content sniffer that decides the route only reads a fixed-size head. Why
// it matters: starting a worker costs about 20 ms of CPU, more than the
// whole rest of the pipeline spends on a small text document.
type PlainTextInProcess struct {
	Next     Extractor
	Limits   extract.Limits
	MaxBytes int64 // larger documents always go to the sandbox
}

// Extract implements Extractor.
func (p *PlainTextInProcess) Extract(ctx context.Context, doc io.Reader, size int64) (extract.Result, sandbox.Usage, error) {
	if size < 0 || size > p.MaxBytes {
		return p.Next.Extract(ctx, doc, size)
	}
	raw, err := io.ReadAll(io.LimitReader(doc, size+1))
	if err != nil {
		return extract.Result{}, sandbox.Usage{}, err
	}
	if !plainText(raw) {
		return p.Next.Extract(ctx, bytes.NewReader(raw), int64(len(raw)))
	}
	start := time.Now()
	// No PDF engine: a plain-text document never reaches it.
	x := extract.New(ctx, p.Limits, pdf.EngineConfig{})
	defer x.Close()
	res, err := x.Extract(raw)
	return res, sandbox.Usage{Wall: time.Since(start)}, err
}

// plainText reports whether the content sniffer sees plain text (text/plain
// or text/csv, in any charset) and nothing more structured: HTML, XML, RTF
// and every binary format go to the sandbox.
func plainText(raw []byte) bool {
	mt := mimetype.Detect(raw)
	for m := mt; m != nil; m = m.Parent() {
		if m.Is("text/html") || m.Is("text/xml") || m.Is("application/xml") || m.Is("text/rtf") {
			return false
		}
	}
	base := strings.TrimSpace(strings.SplitN(mt.String(), ";", 2)[0])
	return base == "text/plain" || base == "text/csv"
}
