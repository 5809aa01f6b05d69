package ooxml

import (
	"encoding/xml"
	"errors"
	"io"
	"path"
	"strings"

	"github.com/aiprism/prism/extractor/reason"
)

// Kind is what an OOXML package holds, decided by its parts.
type Kind int

// Kinds of packages.
const (
	Unknown Kind = iota
	Word
	Excel
	PowerPoint
)

func (k Kind) String() string {
	switch k {
	case Word:
		return "docx"
	case Excel:
		return "xlsx"
	case PowerPoint:
		return "pptx"
	}
	return "unknown"
}

// ContentTypes is [Content_Types].xml: the type of each part.
type ContentTypes struct {
	Defaults  map[string]string // by lower-cased extension
	Overrides map[string]string // by lower-cased part name without leading slash
}

// TypeOf returns the content type of a part.
func (c *ContentTypes) TypeOf(part string) string {
	if t, ok := c.Overrides[partKey(part)]; ok {
		return t
	}
	if i := strings.LastIndexByte(part, '.'); i >= 0 {
		return c.Defaults[strings.ToLower(part[i+1:])]
	}
	return ""
}

const maxSmallPart = 4 << 20

// ContentTypes reads [Content_Types].xml.
func (p *Package) ContentTypes() (*ContentTypes, error) {
	rc, err := p.Open("[Content_Types].xml")
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	ct := &ContentTypes{Defaults: map[string]string{}, Overrides: map[string]string{}}
	d := NewDecoder(io.LimitReader(rc, maxSmallPart), "[Content_Types].xml", p.lim.MaxDepth)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return ct, nil
		}
		if err != nil {
			return nil, reason.Wrap(reason.NotOOXML, err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "Default":
			ct.Defaults[strings.ToLower(attr(se, "Extension"))] = strings.ToLower(attr(se, "ContentType"))
		case "Override":
			ct.Overrides[partKey(attr(se, "PartName"))] = strings.ToLower(attr(se, "ContentType"))
		}
	}
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// Identify confirms that the package is a Word or Excel document by its
// parts (never by its file name) and returns its kind and main part. It
// fails with not-ooxml for other ZIPs, macro-enabled for packages with VBA
// and unsupported-type for other Office packages.
func (p *Package) Identify() (Kind, string, error) {
	if !p.Has("[Content_Types].xml") {
		return Unknown, "", reason.New(reason.NotOOXML, "the file is a ZIP archive, not a Word or Excel document (it has no [Content_Types].xml)")
	}
	ct, err := p.ContentTypes()
	if err != nil {
		return Unknown, "", err
	}
	for _, f := range p.zr.File {
		if strings.HasSuffix(partKey(f.Name), "vbaproject.bin") {
			return Unknown, "", reason.New(reason.MacroEnabled, "the document contains macros (%s); macro-enabled files are not accepted, save it as a plain .docx or .xlsx", f.Name)
		}
	}
	all := make([]string, 0, len(ct.Overrides)+len(ct.Defaults))
	for _, t := range ct.Overrides {
		all = append(all, t)
	}
	for _, t := range ct.Defaults {
		all = append(all, t)
	}
	for _, t := range all {
		if strings.Contains(t, "macroenabled") || strings.Contains(t, "vbaproject") {
			return Unknown, "", reason.New(reason.MacroEnabled, "the document is macro-enabled (content type %s); macro-enabled files are not accepted, save it as a plain .docx or .xlsx", t)
		}
	}
	for part, t := range ct.Overrides {
		if !p.Has(part) {
			continue
		}
		switch t {
		case "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
			"application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml":
			return Word, part, nil
		case "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
			"application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml":
			return Excel, part, nil
		case "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml":
			return PowerPoint, part, reason.New(reason.UnsupportedType, "PowerPoint presentations are not supported; upload a PDF export instead")
		}
	}
	// Some writers declare the main part through a Default; fall back to
	// the conventional names.
	switch {
	case p.Has("word/document.xml"):
		return Word, "word/document.xml", nil
	case p.Has("xl/workbook.xml"):
		return Excel, "xl/workbook.xml", nil
	}
	return Unknown, "", reason.New(reason.NotOOXML, "the file is a ZIP archive but not a Word or Excel document (no word/document.xml or xl/workbook.xml)")
}

// Core returns the title and author from docProps/core.xml, best effort:
// metadata never fails an extraction.
func (p *Package) Core() (title, author string) {
	rc, err := p.Open("docProps/core.xml")
	if err != nil {
		return "", ""
	}
	defer rc.Close()
	d := NewDecoder(io.LimitReader(rc, maxSmallPart), "docProps/core.xml", p.lim.MaxDepth)
	var cur string
	for {
		tok, err := d.Token()
		if err != nil {
			return strings.TrimSpace(title), strings.TrimSpace(author)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			cur = t.Name.Local
		case xml.EndElement:
			cur = ""
		case xml.CharData:
			switch cur {
			case "title":
				title += string(t)
			case "creator":
				author += string(t)
			}
		}
	}
}

// Rel is one relationship of a part.
type Rel struct {
	ID, Type string
	Target   string // the target part name (resolved, without leading slash)
	External bool
}

// Rels reads the relationships of part (e.g. word/document.xml's
// word/_rels/document.xml.rels). A missing rels part is no error.
func (p *Package) Rels(part string) ([]Rel, error) {
	dir, file := path.Split(strings.TrimPrefix(part, "/"))
	relsName := dir + "_rels/" + file + ".rels"
	if !p.Has(relsName) {
		return nil, nil
	}
	rc, err := p.Open(relsName)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	d := NewDecoder(io.LimitReader(rc, maxSmallPart), relsName, p.lim.MaxDepth)
	var rels []Rel
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return rels, nil
		}
		if err != nil {
			return nil, err
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "Relationship" {
			continue
		}
		r := Rel{ID: attr(se, "Id"), Type: attr(se, "Type"), External: strings.EqualFold(attr(se, "TargetMode"), "External")}
		t := attr(se, "Target")
		if !r.External {
			if strings.HasPrefix(t, "/") {
				t = strings.TrimPrefix(t, "/")
			} else {
				t = path.Clean(path.Join(dir, t))
			}
		}
		r.Target = t
		rels = append(rels, r)
	}
}

// RelTarget returns the target of the first relationship of part whose
// type ends with typeSuffix (e.g. "/styles"), or "".
func (p *Package) RelTarget(part, typeSuffix string) string {
	rels, err := p.Rels(part)
	if err != nil {
		return ""
	}
	for _, r := range rels {
		if !r.External && strings.HasSuffix(r.Type, typeSuffix) && p.Has(r.Target) {
			return r.Target
		}
	}
	return ""
}
