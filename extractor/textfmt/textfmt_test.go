package textfmt

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aiprism/prism/extractor/textbuf"
)

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		name, in, want, enc string
		repaired            bool
	}{
		{"utf8 bom crlf", "\xef\xbb\xbfline one\r\nline two\rend", "line one\nline two\nend", UTF8, false},
		{"utf16le bom", "\xff\xfeG\x00r\x00\xfc\x00\xdf\x00e\x00", "Grüße", UTF16LE, false},
		{"utf16be bom", "\xfe\xff\x00G\x00r\x00\xfc\x00\xdf\x00e", "Grüße", UTF16BE, false},
		{"utf16le no bom", "H\x00e\x00l\x00l\x00o\x00 \x00w\x00o\x00r\x00l\x00d\x00", "Hello world", UTF16LE, false},
		{"cp1252", "Stra\xdfe \x80 5 \x93quoted\x94", "Straße € 5 \u201cquoted\u201d", Windows1252, false},
		{"mostly utf8", "caf\xc3\xa9 na\xc3\xafve \xff end", "café naïve \uFFFD end", UTF8, true},
		{"controls", "a\x00b\x07c\td" + strings.Repeat(".", 2000), "abc\td" + strings.Repeat(".", 2000), UTF8, false},
	} {
		got, enc, rep, err := Decode([]byte(c.in))
		if err != nil || got != c.want || enc != c.enc || rep != c.repaired {
			t.Errorf("%s: Decode = %q %s %v %v, want %q %s %v", c.name, got, enc, rep, err, c.want, c.enc, c.repaired)
		}
	}
	if _, _, _, err := Decode([]byte("\x00\x01\x02\x00\x00binary\x00\x00\x00")); !errors.Is(err, ErrBinary) {
		t.Fatalf("binary: %v", err)
	}
}

func TestExtractCSV(t *testing.T) {
	out := textbuf.New(0)
	doc, err := Extract([]byte("\"Nr.\";\"Ma\xdfnahme\";\"Status\"\r\n1;\"Drucker \"\"alt\"\"\";\"Offen\"\r\n2;\"Notebooks\";\"In Arbeit\"\r\n"), out)
	if err != nil || doc.Format != FormatCSV || doc.Encoding != Windows1252 {
		t.Fatalf("doc=%+v err=%v", doc, err)
	}
	want := "Nr. | Maßnahme | Status\n1 | Drucker \"alt\" | Offen\n2 | Notebooks | In Arbeit\n"
	if out.String() != want {
		t.Fatalf("got %q", out.String())
	}
}

func TestExtractMarkdownAndText(t *testing.T) {
	out := textbuf.New(0)
	doc, _ := Extract([]byte("# Title\n\n**Bold** intro.\n\n## Part\n\n- item\n"), out)
	if doc.Format != FormatMarkdown {
		t.Fatalf("markdown: %+v", doc)
	}
	out = textbuf.New(0)
	doc, _ = Extract([]byte("Meeting note. We met, talked, and left.\nNothing else, really.\n"), out)
	if doc.Format != FormatTXT {
		t.Fatalf("prose taken for %s", doc.Format)
	}
}

func FuzzText(f *testing.F) {
	for _, s := range []string{"hello\r\nworld", "\xef\xbb\xbf\xff", "\xff\xfeh\x00i\x00", "a,b\n1,2\n", "# T\n**x**\n- y\n", "caf\xe9 \xc3\xa9 \xed\xa0\x80"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := textbuf.New(1 << 16)
		if _, err := Extract(b, out); err != nil {
			return
		}
		if !utf8.ValidString(out.String()) {
			t.Fatalf("invalid UTF-8 out of %q", b)
		}
		if strings.ContainsRune(out.String(), '\r') {
			t.Fatalf("CR left in output of %q", b)
		}
	})
}
