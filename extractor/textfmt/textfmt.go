// Package textfmt extracts plain-text documents: TXT, CSV and Markdown.
//
// Text arrives in whatever encoding the exporting tool chose: UTF-8,
// UTF-16 with a byte-order mark (Windows "Unicode" text), or Windows-1252
// from older tools. The encoding is decided from the bytes; the output is
// always valid UTF-8 with LF line ends. CSV is detected by content and
// rendered as rows of cells so that cell boundaries survive.
package textfmt

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
)

// Formats and encodings reported in Doc.
const (
	FormatTXT      = "txt"
	FormatCSV      = "csv"
	FormatMarkdown = "markdown"

	UTF8        = "utf-8"
	UTF16LE     = "utf-16le"
	UTF16BE     = "utf-16be"
	Windows1252 = "windows-1252"
)

// ErrBinary is returned for data with NUL bytes outside UTF-16, which no
// text document has.
var ErrBinary = errors.New("data is binary, not text")

// Doc describes an extracted text document.
type Doc struct {
	Format   string
	Encoding string
	Repaired bool // invalid UTF-8 sequences were replaced by U+FFFD
}

// Extract decodes raw and writes its text to out.
func Extract(raw []byte, out *textbuf.Builder) (Doc, error) {
	text, enc, repaired, err := Decode(raw)
	if err != nil {
		return Doc{}, reason.Wrap(reason.UnsupportedType, err)
	}
	doc := Doc{Format: FormatTXT, Encoding: enc, Repaired: repaired}
	if delim, ok := SniffCSV(text); ok {
		doc.Format = FormatCSV
		if err := writeCSV(text, delim, out); err == nil {
			return doc, nil
		}
		// Not CSV after all (a quote broke it): keep the text as it is.
		doc.Format = FormatTXT
	}
	if IsMarkdown(text) {
		doc.Format = FormatMarkdown
	}
	out.WriteString(text)
	return doc, nil
}

// Decode returns raw as normalized UTF-8 text and the encoding it was in.
//
// The order is: a byte-order mark (UTF-8, UTF-16LE, UTF-16BE); UTF-16
// without a mark when every other byte is NUL; valid UTF-8; mostly-valid
// UTF-8 (more well-formed multi-byte sequences than broken bytes) with
// the broken bytes replaced by U+FFFD; otherwise Windows-1252, which
// decodes every byte. CRLF and CR become LF; NUL and other control
// characters except tab, LF and form feed are dropped.
func Decode(raw []byte) (text, enc string, repaired bool, err error) {
	var dec *encoding.Decoder
	switch {
	case bytes.HasPrefix(raw, []byte("\xef\xbb\xbf")):
		raw, enc = raw[3:], UTF8
	case bytes.HasPrefix(raw, []byte("\xff\xfe")):
		dec, enc = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder(), UTF16LE
	case bytes.HasPrefix(raw, []byte("\xfe\xff")):
		dec, enc = unicode.UTF16(unicode.BigEndian, unicode.ExpectBOM).NewDecoder(), UTF16BE
	default:
		if e, ok := sniffUTF16(raw); ok {
			enc = e
			order := unicode.LittleEndian
			if e == UTF16BE {
				order = unicode.BigEndian
			}
			dec = unicode.UTF16(order, unicode.IgnoreBOM).NewDecoder()
		}
	}
	var s string
	switch {
	case dec != nil:
		b, derr := dec.Bytes(raw)
		if derr != nil {
			return "", "", false, derr
		}
		s = string(b)
	case bytes.IndexByte(raw, 0) >= 0 && !mostlyText(raw):
		return "", "", false, ErrBinary
	case utf8.Valid(raw):
		s, enc = string(raw), UTF8
	default:
		good, bad := utf8Stats(raw)
		if good > 0 && good >= bad {
			s, enc, repaired = strings.ToValidUTF8(string(raw), "\uFFFD"), UTF8, true
		} else {
			b, derr := charmap.Windows1252.NewDecoder().Bytes(raw)
			if derr != nil {
				return "", "", false, derr
			}
			s, enc = string(b), Windows1252
		}
	}
	return normalize(s), enc, repaired, nil
}

// normalize turns line ends into LF and drops control characters.
func normalize(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\r':
			return '\n'
		case r == '\t' || r == '\n' || r == '\f':
			return r
		case r < 0x20 || r == 0x7f || r == '\uFEFF':
			return -1
		}
		return r
	}, s)
}

// sniffUTF16 recognizes UTF-16 without a byte-order mark from the NULs of
// its ASCII characters.
func sniffUTF16(raw []byte) (string, bool) {
	n := min(len(raw), 4096) &^ 1
	if n < 8 {
		return "", false
	}
	even, odd := 0, 0
	for i := 0; i < n; i += 2 {
		if raw[i] == 0 {
			even++
		}
		if raw[i+1] == 0 {
			odd++
		}
	}
	half := n / 2
	switch {
	case odd*10 >= half*7 && even*10 <= half:
		return UTF16LE, true
	case even*10 >= half*7 && odd*10 <= half:
		return UTF16BE, true
	}
	return "", false
}

// mostlyText tolerates a few stray NULs in otherwise textual data.
func mostlyText(raw []byte) bool {
	return bytes.Count(raw, []byte{0})*1000 < len(raw)
}

// utf8Stats counts well-formed multi-byte sequences and invalid bytes.
func utf8Stats(b []byte) (good, bad int) {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			bad++
		case n > 1:
			good++
		}
		i += n
	}
	return good, bad
}

// SniffCSV reports whether text is delimited data: at least two records
// in its first lines, all with the same number (two or more) of fields
// for one of comma, semicolon or tab.
func SniffCSV(text string) (rune, bool) {
	head := text
	lines := 0
	for i := 0; i < len(head); i++ {
		if head[i] == '\n' {
			if lines++; lines == 20 {
				head = head[:i]
				break
			}
		}
	}
	for _, d := range []rune{',', ';', '\t'} {
		r := csv.NewReader(strings.NewReader(head))
		r.Comma = d
		r.FieldsPerRecord = 0
		r.LazyQuotes = false
		recs, err := r.ReadAll()
		if err != nil && !(lines == 20 && len(recs) >= 2) {
			continue
		}
		if len(recs) >= 2 && len(recs[0]) >= 2 {
			return d, true
		}
	}
	return 0, false
}

func writeCSV(text string, delim rune, out *textbuf.Builder) error {
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = delim
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	var line strings.Builder
	for !out.Full() {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		line.Reset()
		for i, f := range rec {
			if i > 0 {
				line.WriteString(" | ")
			}
			line.WriteString(strings.Join(strings.Fields(f), " "))
		}
		out.Line(line.String())
	}
	return nil
}

// IsMarkdown reports whether text uses Markdown structure: ATX or setext
// headings plus at least one more Markdown construct.
func IsMarkdown(text string) bool {
	headings, other := 0, 0
	prev := ""
	for i, line := range strings.Split(text, "\n") {
		if i > 2000 {
			break
		}
		t := strings.TrimSpace(line)
		switch {
		case atxHeading(t):
			headings++
		case len(t) >= 3 && t == line && prev != "" && prev[0] != ' ' && (strings.Trim(t, "=") == "" || strings.Trim(t, "-") == ""):
			// A setext underline: flush left, under a flush-left line
			// (indented dash rows are plain-text table borders).
			headings++
		case strings.HasPrefix(t, "```"), strings.HasPrefix(t, "- "), strings.HasPrefix(t, "* "), strings.HasPrefix(t, "> "),
			strings.Contains(t, "**"), strings.Contains(t, "]("), strings.HasPrefix(t, "|") && strings.HasSuffix(t, "|"):
			other++
		}
		prev = strings.TrimRight(line, " \t\r")
	}
	return headings > 0 && headings+other >= 3
}

func atxHeading(t string) bool {
	n := 0
	for n < len(t) && t[n] == '#' {
		n++
	}
	return n >= 1 && n <= 6 && len(t) > n && t[n] == ' '
}
