// Package htmlfmt extracts the readable text of an HTML document.
//
// Script, style and other non-content elements are dropped (their text is
// code, and in hostile uploads it is where injected instructions hide);
// headings become "# " lines, list items "- " lines and table rows
// " | "-separated cells, so structure survives as plain text. The
// tokenizer streams and keeps no tree, so nesting depth costs nothing.
package htmlfmt

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/aiprism/prism/extractor/textbuf"
	"golang.org/x/net/html"
	"golang.org/x/net/html/charset"
)

// Doc describes an extracted HTML document.
type Doc struct {
	Title    string
	Author   string
	Encoding string
	Lang     string // the lang attribute of <html>, if any
}

// maxToken caps the bytes of a single token (a text run or a tag).
const maxToken = 8 << 20

// skipped elements hold no readable text.
var skipped = map[string]bool{
	"script": true, "style": true, "noscript": true, "template": true,
	"svg": true, "math": true, "iframe": true, "object": true, "embed": true,
	"button": true, "select": true, "textarea": true, "canvas": true,
}

// blocks end the current line.
var blocks = map[string]bool{
	"p": true, "div": true, "br": true, "li": true, "ul": true, "ol": true,
	"table": true, "tr": true, "thead": true, "tbody": true, "tfoot": true,
	"section": true, "article": true, "header": true, "footer": true, "nav": true,
	"aside": true, "main": true, "blockquote": true, "pre": true, "hr": true,
	"dl": true, "dt": true, "dd": true, "figure": true, "figcaption": true,
	"address": true, "caption": true, "form": true, "fieldset": true, "legend": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"title": true, "body": true, "html": true,
}

// Extract writes the text of raw to out.
func Extract(raw []byte, out *textbuf.Builder) (Doc, error) {
	enc, name, certain := charset.DetermineEncoding(raw, "text/html")
	if !certain && utf8.Valid(raw) {
		name = "utf-8"
	} else if name != "utf-8" {
		decoded, err := enc.NewDecoder().Bytes(raw)
		if err != nil {
			return Doc{Encoding: name}, err
		}
		raw = decoded
	}
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	w := &writer{out: out}
	doc := Doc{Encoding: name}
	z := html.NewTokenizer(bytes.NewReader(raw))
	z.SetMaxBuf(maxToken)
	skip := map[string]int{}
	skipping := 0
	inTitle, inPre := false, 0
	var title strings.Builder
	for !out.Full() {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			err := z.Err()
			w.flush()
			doc.Title = strings.Join(strings.Fields(title.String()), " ")
			if errors.Is(err, io.EOF) {
				return doc, nil
			}
			return doc, err
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			tag := string(name)
			attrs := map[string]string{}
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				if len(attrs) < 32 {
					attrs[string(k)] = string(v)
				}
			}
			switch tag {
			case "html":
				doc.Lang = attrs["lang"]
			case "meta":
				if strings.EqualFold(attrs["name"], "author") {
					doc.Author = strings.TrimSpace(attrs["content"])
				}
			case "title":
				inTitle = tt == html.StartTagToken
				continue
			}
			if skipped[tag] {
				if tt == html.StartTagToken {
					skip[tag]++
					skipping++
				}
				continue
			}
			if skipping > 0 {
				continue
			}
			w.start(tag, tt == html.SelfClosingTagToken)
			if tag == "pre" && tt == html.StartTagToken {
				inPre++
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if tag == "title" {
				inTitle = false
				continue
			}
			if skipped[tag] {
				if skip[tag] > 0 {
					skip[tag]--
					skipping--
				}
				continue
			}
			if skipping > 0 {
				continue
			}
			if tag == "pre" && inPre > 0 {
				inPre--
			}
			w.end(tag)
		case html.TextToken:
			if inTitle {
				if title.Len() < 4096 {
					title.Write(z.Text())
				}
				continue
			}
			if skipping > 0 {
				continue
			}
			w.text(string(z.Text()), inPre > 0)
		}
	}
	w.flush()
	doc.Title = strings.Join(strings.Fields(title.String()), " ")
	return doc, nil
}

// writer assembles lines from inline text and block boundaries.
type writer struct {
	out    *textbuf.Builder
	line   strings.Builder
	prefix string // "# ", "- " ... for the current line
	cells  int    // cells started in the current table row
	inCell int    // depth of open td/th: blocks inside a cell do not break the row
	space  bool   // a space is pending before the next word
}

func (w *writer) start(tag string, selfClosing bool) {
	if w.inCell > 0 && tag != "td" && tag != "th" && tag != "tr" {
		if blocks[tag] {
			w.space = true
		}
		return
	}
	switch tag {
	case "h1", "h2", "h3", "h4", "h5", "h6":
		w.flush()
		w.prefix = strings.Repeat("#", int(tag[1]-'0')) + " "
	case "li":
		w.flush()
		w.prefix = "- "
	case "tr":
		w.flush()
		w.cells = 0
	case "td", "th":
		if w.cells > 0 {
			w.line.WriteString(" | ")
		}
		w.cells++
		w.space = false
		if !selfClosing {
			w.inCell++
		}
	case "img":
		// alt text is what a reader of the page would get.
	default:
		if blocks[tag] {
			w.flush()
		}
	}
}

func (w *writer) end(tag string) {
	if w.inCell > 0 && tag != "td" && tag != "th" && tag != "tr" && tag != "table" {
		if blocks[tag] {
			w.space = true
		}
		return
	}
	switch tag {
	case "td", "th":
		w.space = false
		w.inCell = max(0, w.inCell-1)
	case "tr", "table":
		w.flush()
		w.cells, w.inCell = 0, 0
	default:
		if blocks[tag] {
			w.flush()
		}
	}
}

func (w *writer) text(s string, pre bool) {
	if pre {
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			if i > 0 {
				w.flush()
			}
			w.line.WriteString(l)
		}
		return
	}
	if s == "" {
		return
	}
	lead := isSpace(s[0])
	trail := isSpace(s[len(s)-1])
	words := strings.Fields(s)
	if len(words) == 0 {
		if w.line.Len() > 0 {
			w.space = true
		}
		return
	}
	if (lead || w.space) && w.line.Len() > 0 && !strings.HasSuffix(w.line.String(), " ") {
		w.line.WriteByte(' ')
	}
	w.line.WriteString(strings.Join(words, " "))
	w.space = trail
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

func (w *writer) flush() {
	s := strings.ToValidUTF8(strings.TrimRight(w.line.String(), " \t"), "\uFFFD")
	w.line.Reset()
	w.space = false
	if strings.TrimSpace(s) == "" {
		w.prefix = ""
		return
	}
	w.out.Line(w.prefix + s)
	w.prefix = ""
}
