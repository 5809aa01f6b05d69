// Package pdf extracts text from PDF documents with PDFium compiled to
// WebAssembly (klippa-app/go-pdfium's webassembly mode on wazero).
//
// Why PDFium in WebAssembly: it had the best text recall on the shared
// corpus of every reader we measured (extractor/README.md), it is the
// engine of Chromium and so copes with the PDFs people really send, and
// inside wazero it needs no cgo and cannot corrupt the Go heap: a PDFium
// bug becomes a trap in a module whose linear memory is capped. The
// process around it is still a throw-away worker (extractor/worker),
// because wall-clock and memory limits are only enforceable there.
//
// Compiling the 5.8 MB module takes seconds and ~300 MB, so an Engine
// keeps a wazero compilation cache on disk: with a warm cache a new
// worker opens PDFium in ~0.2 s and ~50 MB.
package pdf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// EngineConfig configures the WebAssembly runtime.
type EngineConfig struct {
	// CacheDir holds wazero's compiled PDFium. Empty means compile in
	// memory on every start (slow; tests and one-off tools only).
	CacheDir string
	// MaxMemoryBytes caps PDFium's linear memory; zero means 1 GiB.
	MaxMemoryBytes int64
}

// Engine is one PDFium instance. It is not safe for concurrent use: a
// worker process extracts one document at a time, each in a fresh
// instance (Renew).
type Engine struct {
	pool pdfium.Pool
	inst pdfium.Pdfium
}

// NewEngine starts PDFium. ctx bounds every call into the module: when it
// ends, a running call is stopped (wazero's CloseOnContextDone).
func NewEngine(ctx context.Context, cfg EngineConfig) (*Engine, error) {
	maxMem := cfg.MaxMemoryBytes
	if maxMem <= 0 {
		maxMem = 1 << 30
	}
	pages := uint32(min(maxMem>>16, 65536))
	rc := wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithMemoryLimitPages(pages).
		WithCloseOnContextDone(true)
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("pdfium compilation cache %s: %w", cfg.CacheDir, err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	pool, err := webassembly.Init(webassembly.Config{
		Context:       ctx,
		MinIdle:       0,
		MaxIdle:       1,
		MaxTotal:      1,
		RuntimeConfig: rc,
		// No file system: PDFium reads the document from memory only, and
		// the default would mount / into the module.
		FSConfig: wazero.NewFSConfig(),
		// stdout is the worker's protocol channel; PDFium must not write
		// to it.
		Stdout: io.Discard,
		Stderr: io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("start pdfium: %w", err)
	}
	inst, err := pool.GetInstance(time.Minute)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("start pdfium instance: %w", err)
	}
	return &Engine{pool: pool, inst: inst}, nil
}

// Renew replaces the PDFium instance with a fresh one: new linear memory,
// nothing left of the documents before. The compiled module stays, so this
// costs milliseconds where NewEngine costs ~0.2 s of CPU (decoding and
// validating the 5.8 MB module, even from the cache).
func (e *Engine) Renew() error {
	e.inst.Close()
	inst, err := e.pool.GetInstance(time.Minute)
	if err != nil {
		e.inst = nil
		return fmt.Errorf("renew pdfium instance: %w", err)
	}
	e.inst = inst
	return nil
}

// Close releases the module.
func (e *Engine) Close() error {
	if e.inst != nil {
		e.inst.Close()
	}
	return e.pool.Close()
}

// Limits bound one PDF.
type Limits struct {
	MaxPages   int // documents with more pages are rejected
	MaxObjects int // documents with more indirect objects are rejected
}

// Meta describes an extracted PDF.
type Meta struct {
	Pages  int
	Title  string
	Author string
}

// Extract writes the text of raw to out, each page introduced by a
// "--- page N ---" line so that later stages can cite pages.
//
// Failures are classified: encrypted (a user password is needed; an owner
// password alone does not stop reading), corrupt-pdf (unreadable, or cut
// off before its end), pdf-limits, and needs-ocr when no page has a text
// layer.
func (e *Engine) Extract(raw []byte, out *textbuf.Builder, lim Limits) (Meta, error) {
	if err := Check(raw, lim); err != nil {
		return Meta{}, err
	}
	doc, err := e.inst.OpenDocument(&requests.OpenDocument{File: &raw})
	if err != nil {
		switch {
		case errors.Is(err, pdfiumerrors.ErrPassword):
			return Meta{}, reason.New(reason.Encrypted, "the PDF is protected by a password; remove the password and upload it again")
		case errors.Is(err, pdfiumerrors.ErrSecurity):
			return Meta{}, reason.New(reason.Encrypted, "the PDF uses an encryption this reader does not support; save an unencrypted copy and upload it again")
		default:
			return Meta{}, reason.New(reason.CorruptPDF, "the PDF cannot be read (%v); it may be damaged", err)
		}
	}
	defer e.inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document})

	pc, err := e.inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return Meta{}, reason.New(reason.CorruptPDF, "the PDF's page tree cannot be read (%v)", err)
	}
	meta := Meta{Pages: pc.PageCount}
	if lim.MaxPages > 0 && pc.PageCount > lim.MaxPages {
		return meta, reason.New(reason.PDFLimits, "the PDF has %d pages; the limit is %d", pc.PageCount, lim.MaxPages)
	}
	if pc.PageCount == 0 {
		return meta, reason.New(reason.CorruptPDF, "the PDF has no readable pages")
	}
	meta.Title = e.metaText(doc.Document, "Title")
	meta.Author = e.metaText(doc.Document, "Author")

	// Pages without text are marked, so a partly scanned document shows
	// which pages still need OCR; a page PDFium cannot read is marked and
	// skipped rather than failing the document.
	textChars, broken, i := 0, 0, 0
	for ; i < pc.PageCount && !out.Full(); i++ {
		marker := "--- page " + strconv.Itoa(i+1)
		text, err := e.pageText(doc.Document, i)
		switch {
		case err != nil:
			broken++
			out.Line(marker + " (unreadable) ---")
			continue
		case countLetters(text) == 0:
			out.Line(marker + " (no text layer) ---")
			continue
		}
		textChars += countLetters(text)
		out.Line(marker + " ---")
		out.Line(strings.TrimSpace(text))
	}
	if i < pc.PageCount {
		out.MarkTruncated()
	}
	switch {
	case broken == i:
		return meta, reason.New(reason.CorruptPDF, "none of the PDF's pages can be read; it may be damaged")
	case textChars == 0:
		return meta, reason.New(reason.NeedsOCR, "the PDF has no text layer (%d page(s) of images, e.g. a scan): it needs OCR before it can be analysed", pc.PageCount)
	}
	return meta, nil
}

// Check runs the checks that need no parser: the header, the end-of-file
// marker and the object count. Extract runs it too; callers run it first
// to avoid starting PDFium for a file that fails it.
func Check(raw []byte, lim Limits) error {
	// The header may sit anywhere in the first 1024 bytes (PDF 1.7, H.3).
	if !bytes.Contains(raw[:min(len(raw), 1024)], []byte("%PDF-")) {
		return reason.New(reason.CorruptPDF, "the file does not start like a PDF")
	}
	if !complete(raw) {
		// PDFium rebuilds a lost cross-reference table, so a cut-off file
		// may open and yield its first pages. That would be a silent
		// partial success: the user must learn the file is incomplete.
		return reason.New(reason.CorruptPDF, "the PDF is incomplete: it ends before its end-of-file marker (was the upload or download cut off?)")
	}
	if lim.MaxObjects > 0 {
		if n := countObjects(raw); n > lim.MaxObjects {
			return reason.New(reason.PDFLimits, "the PDF has about %d objects; the limit is %d", n, lim.MaxObjects)
		}
	}
	return nil
}

// pageText returns the text of one page in PDFium's reading order, with
// the line breaks PDFium infers from glyph positions.
func (e *Engine) pageText(doc references.FPDF_DOCUMENT, index int) (string, error) {
	page, err := e.inst.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: doc, Index: index})
	if err != nil {
		return "", err
	}
	defer e.inst.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: page.Page})
	tp, err := e.inst.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{ByReference: &page.Page}})
	if err != nil {
		return "", err
	}
	defer e.inst.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	n, err := e.inst.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err != nil {
		return "", err
	}
	if n.Count <= 0 {
		return "", nil
	}
	text, err := e.inst.FPDFText_GetText(&requests.FPDFText_GetText{TextPage: tp.TextPage, StartIndex: 0, Count: n.Count})
	if err != nil {
		return "", err
	}
	return cleanPageText(text.Text), nil
}

// cleanPageText turns PDFium's CRLF line ends into LF and drops the NULs
// and soft hyphens it reports for hyphenation points.
func cleanPageText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch r {
		case '\r':
			return '\n'
		case 0, '\u00ad', '\ufffe', '\uffff':
			return -1
		}
		return r
	}, s)
}

func (e *Engine) metaText(doc references.FPDF_DOCUMENT, tag string) string {
	v, err := e.inst.FPDF_GetMetaText(&requests.FPDF_GetMetaText{Document: doc, Tag: tag})
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ToValidUTF8(v.Value, ""))
}

// complete reports whether the file ends like a whole PDF: "%%EOF" within
// its last 1024 bytes, as readers like Acrobat require.
func complete(raw []byte) bool {
	tail := raw[max(0, len(raw)-1024):]
	return bytes.Contains(tail, []byte("%%EOF"))
}

// countObjects counts "N G obj" headers: a cheap upper bound on the work
// a document can ask for, checked before PDFium parses anything.
func countObjects(raw []byte) int {
	n := 0
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(" obj"))
		if j < 0 {
			return n
		}
		n++
		i += j + 4
	}
}

func countLetters(s string) int {
	n := 0
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			n++
		}
	}
	return n
}
