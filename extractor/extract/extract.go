// Package extract is the in-process extraction pipeline: detect the type
// by content, run the parser for it under the limits, normalize the text
// and describe it. It runs inside the worker process (extractor/worker);
// nothing here assumes it is safe to run on hostile input in a process
// that serves anything else.
package extract

import (
	"context"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aiprism/prism/extractor/detect"
	"github.com/aiprism/prism/extractor/docx"
	"github.com/aiprism/prism/extractor/htmlfmt"
	"github.com/aiprism/prism/extractor/lang"
	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/pdf"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
	"github.com/aiprism/prism/extractor/textfmt"
	"github.com/aiprism/prism/extractor/xlsx"
)

// Limits bound one extraction. Zero fields take DefaultLimits' values.
type Limits struct {
	MaxInputBytes int64        `json:"max_input_bytes"`
	MaxChars      int          `json:"max_chars"` // output is cut here and flagged truncated
	Zip           ooxml.Limits `json:"zip"`
	PDF           pdf.Limits   `json:"pdf"`
	XLSX          xlsx.Limits  `json:"xlsx"`
}

// DefaultLimits are sane for documents people upload for review.
func DefaultLimits() Limits {
	return Limits{
		MaxInputBytes: 100 << 20,
		MaxChars:      2_000_000,
		Zip:           ooxml.DefaultLimits(),
		PDF:           pdf.Limits{MaxPages: 2000, MaxObjects: 2_000_000},
		XLSX:          xlsx.Limits{XMLMemoryBytes: 8 << 20, MaxSheets: 500},
	}
}

// WithDefaults fills zero fields.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.MaxInputBytes > 0 {
		d.MaxInputBytes = l.MaxInputBytes
	}
	if l.MaxChars > 0 {
		d.MaxChars = l.MaxChars
	}
	d.Zip = l.Zip.WithDefaults()
	if l.PDF.MaxPages > 0 {
		d.PDF.MaxPages = l.PDF.MaxPages
	}
	if l.PDF.MaxObjects > 0 {
		d.PDF.MaxObjects = l.PDF.MaxObjects
	}
	if l.XLSX.XMLMemoryBytes > 0 {
		d.XLSX.XMLMemoryBytes = l.XLSX.XMLMemoryBytes
	}
	if l.XLSX.MaxSheets > 0 {
		d.XLSX.MaxSheets = l.XLSX.MaxSheets
	}
	d.XLSX.TmpDir = l.XLSX.TmpDir
	return d
}

// Result is one extraction: normalized text and what is known about it.
type Result struct {
	Text       string   `json:"-"`
	Format     string   `json:"format"` // pdf, docx, xlsx, txt, csv, markdown, html
	MIME       string   `json:"mime,omitempty"`
	Encoding   string   `json:"encoding,omitempty"`
	Pages      int      `json:"pages,omitempty"`
	Sheets     int      `json:"sheets,omitempty"`
	SheetNames []string `json:"sheet_names,omitempty"`
	Title      string   `json:"title,omitempty"`
	Author     string   `json:"author,omitempty"`
	Language   string   `json:"language,omitempty"`
	Words      int      `json:"words"`
	Chars      int      `json:"chars"`
	Truncated  bool     `json:"truncated"`
}

// Extractor runs extractions, one at a time. PDFium is started on the
// first PDF only, and every later PDF gets a fresh instance of it.
type Extractor struct {
	ctx    context.Context
	lim    Limits
	pdfCfg pdf.EngineConfig
	engine *pdf.Engine
	used   bool // the PDFium instance has seen a document
}

// New returns an Extractor; ctx bounds PDFium calls.
func New(ctx context.Context, lim Limits, pdfCfg pdf.EngineConfig) *Extractor {
	return &Extractor{ctx: ctx, lim: lim.WithDefaults(), pdfCfg: pdfCfg}
}

// Close releases PDFium if it was started.
func (x *Extractor) Close() {
	if x.engine != nil {
		x.engine.Close()
		x.engine = nil
	}
}

// Reset sets the limits of the next extraction.
func (x *Extractor) Reset(lim Limits) { x.lim = lim.WithDefaults() }

// WarmPDF starts PDFium, which fills the compilation cache.
func (x *Extractor) WarmPDF() error {
	if x.engine != nil {
		return nil
	}
	e, err := pdf.NewEngine(x.ctx, x.pdfCfg)
	if err != nil {
		return err
	}
	x.engine = e
	return nil
}

// Renew gives PDFium a fresh instance now if a document used it, so the
// next PDF does not wait for it (a worker calls it between documents).
func (x *Extractor) Renew() error {
	if x.engine == nil || !x.used {
		return nil
	}
	if err := x.engine.Renew(); err != nil {
		x.engine.Close()
		x.engine, x.used = nil, false
		return err
	}
	x.used = false
	return nil
}

// pdfEngine returns PDFium ready for a document: started, and renewed if
// an earlier document used it, so no document runs in memory another one
// shaped.
func (x *Extractor) pdfEngine() (*pdf.Engine, error) {
	if err := x.Renew(); err != nil {
		return nil, err
	}
	if err := x.WarmPDF(); err != nil {
		return nil, err
	}
	x.used = true
	return x.engine, nil
}

// Extract turns raw into text. Failures are *reason.Error with a class
// and a message for the user.
func (x *Extractor) Extract(raw []byte) (res Result, err error) {
	if int64(len(raw)) > x.lim.MaxInputBytes {
		return res, reason.New(reason.TooLarge, "the document is %d bytes; the limit is %d", len(raw), x.lim.MaxInputBytes)
	}
	det, err := detect.Detect(raw, x.lim.Zip)
	res.MIME = det.MIME
	if err != nil {
		return res, err
	}
	res.Format = det.Format
	defer func() {
		// A parser panic is a parser bug triggered by this file; the
		// worker reports it instead of dying, so the class is precise.
		if p := recover(); p != nil {
			err = reason.New(corruptClass(det.Format), "the %s parser failed on this file (%v); it is probably damaged", det.Format, p)
			res.Text = ""
		}
	}()
	out := textbuf.New(x.lim.MaxChars)
	switch det.Format {
	case detect.PDF:
		if err := pdf.Check(raw, x.lim.PDF); err != nil {
			return res, err
		}
		eng, err := x.pdfEngine()
		if err != nil {
			return res, reason.Wrap(reason.Internal, fmt.Errorf("start PDF engine: %w", err))
		}
		meta, err := eng.Extract(raw, out, x.lim.PDF)
		if err != nil {
			return res, reason.Wrap(reason.CorruptPDF, err)
		}
		res.Pages, res.Title, res.Author = meta.Pages, meta.Title, meta.Author
	case detect.DOCX:
		doc, err := docx.Extract(det.Pkg, det.Main, out)
		if err != nil {
			return res, reason.Wrap(reason.CorruptDOCX, err)
		}
		res.Title, res.Author = doc.Title, doc.Author
	case detect.XLSX:
		doc, err := xlsx.Extract(raw, det.Pkg, out, x.lim.XLSX)
		if err != nil {
			return res, reason.Wrap(reason.CorruptXLSX, err)
		}
		res.Title, res.Author = doc.Title, doc.Author
		res.Sheets, res.SheetNames = len(doc.Sheets), doc.Sheets
	case detect.HTML:
		doc, err := htmlfmt.Extract(raw, out)
		if err != nil {
			return res, reason.Wrap(reason.UnsupportedType, fmt.Errorf("the HTML cannot be read: %w", err))
		}
		res.Title, res.Author, res.Encoding = doc.Title, doc.Author, doc.Encoding
	case detect.Text:
		doc, err := textfmt.Extract(raw, out)
		if err != nil {
			return res, err
		}
		res.Format, res.Encoding = doc.Format, doc.Encoding
	default:
		return res, reason.New(reason.UnsupportedType, "unsupported format %q", det.Format)
	}
	res.Text = Normalize(out.String())
	res.Truncated = out.Truncated()
	if strings.TrimSpace(res.Text) == "" {
		return res, reason.New(reason.Empty, "the document contains no text")
	}
	res.Chars = utf8.RuneCountInString(res.Text)
	res.Words = countWords(res.Text)
	res.Language = lang.Guess(res.Text)
	return res, nil
}

func corruptClass(format string) string {
	switch format {
	case detect.PDF:
		return reason.CorruptPDF
	case detect.DOCX:
		return reason.CorruptDOCX
	case detect.XLSX:
		return reason.CorruptXLSX
	}
	return reason.UnsupportedType
}

// Normalize makes the text safe and tidy for every later stage: valid
// UTF-8, no control characters but tab and newline, no trailing spaces,
// at most one blank line in a row, one final newline.
func Normalize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	blank := 0
	for line := range strings.Lines(s) {
		line = strings.TrimRight(line, " \t\r\n\u00a0")
		line = strings.Map(func(r rune) rune {
			if r == '\t' {
				return r
			}
			if r == '\f' || r == '\v' || r == '\u2028' || r == '\u2029' {
				return ' '
			}
			if unicode.IsControl(r) || r == '\uFEFF' {
				return -1
			}
			return r
		}, line)
		if strings.TrimSpace(line) == "" {
			blank++
			continue
		}
		if b.Len() > 0 {
			if blank > 0 {
				b.WriteString("\n")
			}
		}
		blank = 0
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}

func countWords(s string) int {
	n, in := 0, false
	for _, r := range s {
		if unicode.IsSpace(r) {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}
