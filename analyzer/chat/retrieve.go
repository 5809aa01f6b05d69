package chat

import (
	"cmp"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/streams"
)

// Passage is a piece of a document's extracted text, with where it is.
type Passage struct {
	Text               string
	StartLine, EndLine int    // 1-based lines of the extracted text, inclusive
	Page               int    // PDF: the page it is on; 0 otherwise
	Sheet              string // XLSX: the sheet it is on
	Section            string // the heading it falls under (DOCX, HTML, Markdown)
}

// MaxPassageBytes is about how long a passage may be: a paragraph longer
// than this is cut at line boundaries, and a single longer line at a word.
const MaxPassageBytes = 1200

// The extractor's markers: extractor/pdf introduces each page with a
// page line, extractor/xlsx each sheet with a sheet line, and the
// DOCX, HTML and Markdown readers write headings as "# " lines.
var (
	pageMarker  = regexp.MustCompile(`^--- page ([0-9]+)(?: \([^)]*\))? ---$`)
	sheetMarker = regexp.MustCompile(`^## Sheet: (.+) \((?:empty|[A-Z]+[0-9]+:[A-Z]+[0-9]+)(?:, hidden)?\)$`)
	heading     = regexp.MustCompile(`^#{1,6} (.+)$`)
)

// Split cuts an extracted text of format (as in streams.ExtractedData)
// into passages: paragraphs separated by blank lines, each page or sheet
// beginning a new one (PDF and XLSX markers are read only for those
// formats, so a text file cannot claim pages), and each heading too;
// paragraphs longer than MaxPassageBytes are cut at line boundaries.
// Marker lines belong to no passage.
func Split(text, format string) []Passage {
	var (
		out            []Passage
		cur            Passage
		b              strings.Builder
		page           int
		sheet, section string
		pdf, xlsx      = format == "pdf", format == "xlsx"
	)
	flush := func() {
		if strings.TrimSpace(b.String()) != "" {
			cur.Text = strings.TrimRight(b.String(), "\n")
			out = append(out, cur)
		}
		b.Reset()
		cur = Passage{}
	}
	add := func(line string, n int) {
		if b.Len() > 0 && b.Len()+len(line) > MaxPassageBytes {
			flush()
		}
		if b.Len() == 0 {
			cur = Passage{StartLine: n, Page: page, Sheet: sheet, Section: section}
		}
		cur.EndLine = n
		b.WriteString(line)
		b.WriteByte('\n')
	}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		n := i + 1
		trimmed := strings.TrimSpace(line)
		if m := pageMarker.FindStringSubmatch(trimmed); pdf && m != nil {
			flush()
			page, _ = strconv.Atoi(m[1])
			continue
		}
		if m := sheetMarker.FindStringSubmatch(trimmed); xlsx && m != nil {
			flush()
			sheet = m[1]
			continue
		}
		if trimmed == "" {
			flush()
			continue
		}
		if m := heading.FindStringSubmatch(trimmed); !pdf && !xlsx && m != nil {
			flush()
			section = m[1]
		}
		for len(line) > MaxPassageBytes {
			cut := cutAt(line, MaxPassageBytes)
			add(line[:cut], n)
			flush()
			line = strings.TrimLeft(line[cut:], " ")
		}
		add(line, n)
	}
	flush()
	return out
}

// cutAt is where to cut s to at most n bytes: after the last space, or at
// a rune boundary when there is none.
func cutAt(s string, n int) int {
	if i := strings.LastIndexByte(s[:n], ' '); i > n/2 {
		return i + 1
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return n
}

// Where says where p is, for the prompt: "page 3, lines 40-44",
// "sheet Budget, lines 7-9" or "lines 12-15", with its section when known.
func (p Passage) Where() string {
	lines := "lines " + strconv.Itoa(p.StartLine) + "-" + strconv.Itoa(p.EndLine)
	if p.StartLine == p.EndLine {
		lines = "line " + strconv.Itoa(p.StartLine)
	}
	switch {
	case p.Page > 0:
		lines = "page " + strconv.Itoa(p.Page) + ", " + lines
	case p.Sheet != "":
		lines = "sheet " + p.Sheet + ", " + lines
	}
	if p.Section != "" {
		lines += ", under \"" + p.Section + "\""
	}
	return lines
}

// Citation is how an answer citing p as [ref] points at it.
func (p Passage) Citation(ref int) streams.Citation {
	return streams.Citation{Ref: ref, Page: p.Page, Sheet: p.Sheet, StartLine: p.StartLine, EndLine: p.EndLine, Quote: bounded(p.Text, maxQuoteBytes)}
}

// maxQuoteBytes bounds a citation's quote: a passage, with room for a
// long line's cut.
const maxQuoteBytes = 2 * MaxPassageBytes

func bounded(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:cutAt(s, n)]
}

// Retrieved is a passage chosen for a question: as the prompt numbers it,
// and as an answer citing it points at it.
type Retrieved struct {
	Prompt   prompt.Passage
	Citation streams.Citation
	Score    float64
}

// BM25 parameters: the usual ones.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// Index scores the passages of one text against questions with Okapi
// BM25 over their terms (see Terms).
type Index struct {
	passages []Passage
	tf       []map[string]int
	length   []int
	df       map[string]int
	avgLen   float64
}

// NewIndex indexes passages.
func NewIndex(passages []Passage) *Index {
	ix := &Index{passages: passages, df: map[string]int{}}
	total := 0
	for _, p := range passages {
		tf := map[string]int{}
		terms := Terms(p.Text)
		for _, t := range terms {
			if tf[t] == 0 {
				ix.df[t]++
			}
			tf[t]++
		}
		ix.tf = append(ix.tf, tf)
		ix.length = append(ix.length, len(terms))
		total += len(terms)
	}
	if len(passages) > 0 {
		ix.avgLen = float64(total) / float64(len(passages))
	}
	return ix
}

// Search returns up to k passages with a positive score for question,
// best first (earlier in the text first among equals), numbered 1..k.
func (ix *Index) Search(question string, k int) []Retrieved {
	var query []string
	for _, t := range Terms(question) {
		if !slices.Contains(query, t) {
			query = append(query, t)
		}
	}
	n := float64(len(ix.passages))
	type hit struct {
		i     int
		score float64
	}
	var hits []hit
	for i, tf := range ix.tf {
		score := 0.0
		for _, t := range query {
			f := float64(tf[t])
			if f == 0 {
				continue
			}
			df := float64(ix.df[t])
			idf := math.Log(1 + (n-df+0.5)/(df+0.5))
			norm := 1 - bm25B + bm25B*float64(ix.length[i])/ix.avgLen
			score += idf * f * (bm25K1 + 1) / (f + bm25K1*norm)
		}
		if score > 0 {
			hits = append(hits, hit{i, score})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return cmp.Compare(b.score, a.score) })
	var out []Retrieved
	for r, h := range hits[:min(k, len(hits))] {
		p := ix.passages[h.i]
		out = append(out, Retrieved{
			Prompt:   prompt.Passage{Ref: r + 1, Where: p.Where(), Text: p.Text},
			Citation: p.Citation(r + 1),
			Score:    h.score,
		})
	}
	return out
}

// Retrieve returns the k passages of an extracted text of format most
// relevant to question.
func Retrieve(text, format, question string, k int) []Retrieved {
	return NewIndex(Split(text, format)).Search(question, k)
}

// Terms are the words retrieval matches on: runs of letters and digits
// (any script), lowercased, without one-character words and stopwords,
// and with a plural "s" folded away on longer words so that "claims"
// finds "claim".
func Terms(s string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		w = strings.ToLower(w)
		if utf8.RuneCountInString(w) < 2 || stopword[w] {
			continue
		}
		if len(w) >= 5 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = w[:len(w)-1]
		}
		out = append(out, w)
	}
	return out
}

// stopword lists frequent English and German words (the corpus has
// both) that say nothing about which passage answers a question.
var stopword = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be been but by can could did do does for from had has have how i if in into is it its
	me my no nor not of on or our should so than that the their them then there these they this those to under us was we were what when where
	which who whom why will with would you your about any all also each other such only own same some more most very just may might must shall
	please tell explain give show document documents
	der die das den dem des ein eine einer eines einem einen und oder aber ist sind war wird werden wurde im in am an auf aus bei mit nach von
	vor zu zum zur für über unter nicht kein keine auch als wie was wer wo warum wann ich du er sie es wir ihr man sich dass`) {
		m[w] = true
	}
	return m
}()
