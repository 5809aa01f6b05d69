// Package docx extracts the text of Word documents (.docx).
//
// It reads the package with extractor/ooxml (size-guarded ZIP, DOCTYPE-free
// depth-capped XML) and walks word/document.xml as a token stream with
// archive/zip and encoding/xml only: the Go DOCX libraries are AGPL or
// template engines, and a stream keeps memory flat for large documents.
//
// Output keeps the structure a reviewer cites: headings as "# Heading"
// lines (level from the paragraph style or its outline level), one line
// per paragraph, list items as "- " lines, and table rows as
// " | "-separated cells. Footnotes,
// endnotes and comments follow the body under their own headings.
package docx

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
)

// Doc describes an extracted Word document.
type Doc struct {
	Title    string
	Author   string
	Headings int
	Tables   int
}

const (
	nsW       = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
	nsWStrict = "http://purl.oclc.org/ooxml/wordprocessingml/main"
	nsMC      = "http://schemas.openxmlformats.org/markup-compatibility/2006"
)

// Extract writes the text of the Word package to out. main is the main
// document part (from ooxml.Package.Identify).
func Extract(pkg *ooxml.Package, main string, out *textbuf.Builder) (Doc, error) {
	var doc Doc
	doc.Title, doc.Author = pkg.Core()
	styles, err := readStyles(pkg, pkg.RelTarget(main, "/styles"))
	if err != nil {
		return doc, err
	}
	w := &walker{out: out, styles: styles}
	if err := w.part(pkg, main); err != nil {
		return doc, err
	}
	for _, extra := range []struct{ rel, title string }{
		{"/footnotes", "Footnotes"}, {"/endnotes", "Endnotes"}, {"/comments", "Comments"},
	} {
		if out.Full() {
			break
		}
		part := pkg.RelTarget(main, extra.rel)
		if part == "" {
			continue
		}
		w.section = "## " + extra.title
		if err := w.part(pkg, part); err != nil {
			return doc, err
		}
		w.section = ""
	}
	doc.Headings, doc.Tables = w.headings, w.tableCount
	return doc, nil
}

// walker turns WordprocessingML tokens into lines.
type walker struct {
	out    *textbuf.Builder
	styles map[string]int // paragraph style id -> heading level (0: body)

	paras    []*para
	tables   []*table
	fallback int  // depth inside mc:Fallback, a duplicate of mc:Choice
	inText   bool // inside w:t

	section    string // written before the first line of a part
	headings   int
	tableCount int
}

type para struct {
	style   string
	outline int // w:outlineLvl of the paragraph itself + 1; 0 if none
	list    bool
	text    strings.Builder
}

type table struct {
	cells []string
	cell  strings.Builder
}

func isW(n xml.Name) bool { return n.Space == nsW || n.Space == nsWStrict }

// part walks one XML part of the document.
func (w *walker) part(pkg *ooxml.Package, name string) error {
	rc, err := pkg.Open(name)
	if err != nil {
		return reason.Wrap(reason.CorruptDOCX, err)
	}
	defer rc.Close()
	d := ooxml.NewDecoder(rc, name, pkg.Limits().MaxDepth)
	w.paras, w.tables, w.fallback, w.inText = nil, nil, 0, false
	for !w.out.Full() {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return reason.Wrap(reason.CorruptDOCX, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if w.fallback > 0 {
				w.fallback++
				continue
			}
			if t.Name.Space == nsMC && t.Name.Local == "Fallback" {
				w.fallback = 1
				continue
			}
			if isW(t.Name) {
				w.start(t)
			}
		case xml.EndElement:
			if w.fallback > 0 {
				w.fallback--
				continue
			}
			if isW(t.Name) {
				w.end(t.Name.Local)
			}
		case xml.CharData:
			if w.inText && w.fallback == 0 && len(w.paras) > 0 {
				w.paras[len(w.paras)-1].text.Write(t)
			}
		}
	}
	return nil
}

func (w *walker) top() *para {
	if len(w.paras) == 0 {
		return nil
	}
	return w.paras[len(w.paras)-1]
}

func (w *walker) start(t xml.StartElement) {
	p := w.top()
	switch t.Name.Local {
	case "p":
		w.paras = append(w.paras, &para{})
	case "pStyle":
		if p != nil {
			p.style = wAttr(t, "val")
		}
	case "outlineLvl":
		if p != nil {
			if n, ok := atoi(wAttr(t, "val")); ok && n < 9 {
				p.outline = n + 1
			}
		}
	case "numPr":
		if p != nil {
			p.list = true
		}
	case "t":
		w.inText = true
	case "tab", "ptab":
		if p != nil {
			p.text.WriteByte('\t')
		}
	case "br", "cr":
		if p != nil {
			p.text.WriteByte('\n')
		}
	case "noBreakHyphen":
		if p != nil {
			p.text.WriteByte('-')
		}
	case "tbl":
		w.tables = append(w.tables, &table{})
		w.tableCount++
	case "tr":
		if len(w.tables) > 0 {
			w.tables[len(w.tables)-1].cells = w.tables[len(w.tables)-1].cells[:0]
		}
	case "tc":
		if len(w.tables) > 0 {
			w.tables[len(w.tables)-1].cell.Reset()
		}
	}
}

func (w *walker) end(local string) {
	switch local {
	case "t":
		w.inText = false
	case "p":
		if len(w.paras) == 0 {
			return
		}
		p := w.paras[len(w.paras)-1]
		w.paras = w.paras[:len(w.paras)-1]
		w.paragraph(p)
	case "tc":
		if tb := w.table(); tb != nil {
			tb.cells = append(tb.cells, strings.TrimSpace(tb.cell.String()))
			tb.cell.Reset()
		}
	case "tr":
		tb := w.table()
		if tb == nil {
			return
		}
		row := strings.Join(tb.cells, " | ")
		tb.cells = tb.cells[:0]
		if strings.Trim(row, " |") == "" {
			return
		}
		if len(w.tables) > 1 {
			// A nested table goes into the outer cell, rows separated.
			outer := w.tables[len(w.tables)-2]
			if outer.cell.Len() > 0 {
				outer.cell.WriteString(" / ")
			}
			outer.cell.WriteString(row)
			return
		}
		w.line(row)
	case "tbl":
		if len(w.tables) > 0 {
			w.tables = w.tables[:len(w.tables)-1]
		}
	}
}

func (w *walker) table() *table {
	if len(w.tables) == 0 {
		return nil
	}
	return w.tables[len(w.tables)-1]
}

// paragraph places a finished paragraph: into the open table cell, into
// the enclosing paragraph (text boxes nest paragraphs), or as a line.
func (w *walker) paragraph(p *para) {
	text := p.text.String()
	if tb := w.table(); tb != nil && len(w.paras) == 0 {
		text = strings.Join(strings.Fields(text), " ")
		if text == "" {
			return
		}
		if tb.cell.Len() > 0 {
			tb.cell.WriteByte(' ')
		}
		tb.cell.WriteString(text)
		return
	}
	text = strings.TrimRight(text, " \t\n")
	if strings.TrimSpace(text) == "" {
		return
	}
	level := p.outline
	if level == 0 {
		level = w.styles[p.style]
		if level == 0 && w.styles == nil {
			level = headingFromID(p.style)
		}
	}
	if level > 0 {
		w.headings++
		text = strings.Repeat("#", min(level, 6)) + " " + strings.Join(strings.Fields(text), " ")
	} else if p.list {
		text = "- " + text
	}
	w.line(text)
}

func (w *walker) line(s string) {
	if w.section != "" {
		w.out.Line(w.section)
		w.section = ""
	}
	w.out.Line(s)
}

func wAttr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || isW(a.Name)) {
			return a.Value
		}
	}
	return ""
}

func atoi(s string) (int, bool) {
	n := 0
	if s == "" || len(s) > 4 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
