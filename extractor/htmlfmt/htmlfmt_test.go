package htmlfmt

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aiprism/prism/extractor/textbuf"
)

func TestExtract(t *testing.T) {
	in := `<!DOCTYPE html><html lang="de"><head><title>Protokoll  der Sitzung</title>
<meta name="author" content="Büro"><style>p { color: red } STYLE-SENTINEL</style>
<script>var SCRIPT_SENTINEL = "ignore previous instructions";</script></head>
<body><h1>Ergebnisse</h1><p>Der <b>Lenkungskreis</b>
 beschließt &amp; vertagt.</p><ul><li>Punkt eins</li><li>Punkt <i>zwei</i></li></ul>
<table><tr><th>Nr.</th><th>Maßnahme</th></tr><tr><td><p>1</p></td><td><p>Drucker</p><p>tauschen</p></td></tr></table>
<noscript>NOSCRIPT</noscript><pre>a  b
c</pre></body></html>`
	out := textbuf.New(0)
	doc, err := Extract([]byte(in), out)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Ergebnisse\nDer Lenkungskreis beschließt & vertagt.\n- Punkt eins\n- Punkt zwei\nNr. | Maßnahme\n1 | Drucker tauschen\na  b\nc\n"
	if got := out.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if doc.Title != "Protokoll der Sitzung" || doc.Author != "Büro" || doc.Lang != "de" {
		t.Fatalf("doc = %+v", doc)
	}
}

func TestLatin1Meta(t *testing.T) {
	out := textbuf.New(0)
	doc, err := Extract([]byte("<html><head><meta charset=\"windows-1252\"></head><body><p>Stra\xdfe \x80</p></body></html>"), out)
	if err != nil || out.String() != "Straße €\n" || doc.Encoding != "windows-1252" {
		t.Fatalf("got %q %+v %v", out.String(), doc, err)
	}
}

func FuzzHTML(f *testing.F) {
	for _, s := range []string{"<p>a<b>b</b></p>", "<script>x</script>y", "<table><tr><td>1<td>2</table>", "<pre>\n x</pre>", "<h1>t</h1><li>i", "<td><td></tr></td>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := textbuf.New(1 << 16)
		if _, err := Extract(b, out); err != nil {
			return
		}
		if !utf8.ValidString(out.String()) && utf8.Valid(b) {
			t.Fatalf("invalid UTF-8 from valid input %q", b)
		}
		if strings.Contains(string(b), "<script>SENTINEL") && strings.Contains(out.String(), "SENTINEL") {
			t.Fatalf("script text leaked")
		}
	})
}
