package docx

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"

	"github.com/aiprism/prism/extractor/ooxml"
	"github.com/aiprism/prism/extractor/reason"
)

// readStyles maps paragraph style ids to heading levels. Style ids vary
// by writer and by the language of Word's user interface, so the level
// comes from the style's built-in name ("heading 1", "Title") or its
// outline level, following basedOn. A document without styles.xml gets
// nil, and ids are guessed.
func readStyles(pkg *ooxml.Package, part string) (map[string]int, error) {
	if part == "" {
		return nil, nil
	}
	rc, err := pkg.Open(part)
	if err != nil {
		return nil, reason.Wrap(reason.CorruptDOCX, err)
	}
	defer rc.Close()
	type style struct {
		name, basedOn string
		outline       int // outline level + 1, 0 if none
	}
	all := map[string]*style{}
	var cur *style
	d := ooxml.NewDecoder(rc, part, pkg.Limits().MaxDepth)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, reason.Wrap(reason.CorruptDOCX, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if !isW(t.Name) {
				continue
			}
			switch t.Name.Local {
			case "style":
				cur = nil
				if wAttr(t, "type") == "paragraph" {
					cur = &style{}
					all[wAttr(t, "styleId")] = cur
				}
			case "name":
				if cur != nil {
					cur.name = strings.ToLower(wAttr(t, "val"))
				}
			case "basedOn":
				if cur != nil {
					cur.basedOn = wAttr(t, "val")
				}
			case "outlineLvl":
				if n, ok := atoi(wAttr(t, "val")); ok && cur != nil && n < 9 {
					cur.outline = n + 1
				}
			}
		case xml.EndElement:
			if isW(t.Name) && t.Name.Local == "style" {
				cur = nil
			}
		}
	}
	levels := make(map[string]int, len(all))
	for id := range all {
		s := all[id]
		for hops := 0; s != nil && hops < 16; hops++ {
			if l := levelOf(s.name, s.outline); l > 0 {
				levels[id] = l
				break
			}
			s = all[s.basedOn]
		}
	}
	return levels, nil
}

func levelOf(name string, outline int) int {
	switch {
	case name == "title":
		return 1
	case strings.HasPrefix(name, "heading "):
		if n, ok := atoi(strings.TrimPrefix(name, "heading ")); ok && n >= 1 && n <= 9 {
			return n
		}
	}
	return outline
}

// headingFromID guesses from a style id alone ("Heading2", "Title").
func headingFromID(id string) int {
	l := strings.ToLower(id)
	if l == "title" {
		return 1
	}
	if strings.HasPrefix(l, "heading") {
		if n, ok := atoi(strings.TrimPrefix(l, "heading")); ok && n >= 1 && n <= 9 {
			return n
		}
	}
	return 0
}
