package bedrocksim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aiprism/prism/analyzer/assessment"
)

// The blocks of a chat turn framed by prompt.ChatUser, and the analyzer's
// framed document.
var blockNames = []string{"ASSESSMENT", "PASSAGES", "DOCUMENTS", "DOCUMENT"}

// block is one nonce-delimited block of a user turn.
type block struct{ name, body string }

// splitBlocks splits msg into its blocks, in order, and the text outside
// them. A block opens with a line "<<<NAME nonce" and closes with the first
// line "NAME nonce>>>" after it (without one it runs to the end); markers
// inside a block are its content.
func splitBlocks(msg string) (blocks []block, outside string) {
	var out strings.Builder
	for off := 0; ; {
		name, at, next, nonce := "", -1, 0, ""
		for _, n := range blockNames {
			if a, nx, no, ok := openingLine(msg[off:], "<<<"+n+" "); ok && (at < 0 || a < at) {
				name, at, next, nonce = n, a, nx, no
			}
		}
		if at < 0 {
			out.WriteString(msg[off:])
			return blocks, out.String()
		}
		out.WriteString(msg[off : off+at])
		body := msg[off+next:]
		end, after, ok := closingLine(body, name+" "+nonce+">>>")
		if !ok {
			end, after = len(body), len(body)
		}
		blocks = append(blocks, block{name, body[:end]})
		off += next + after
	}
}

// passage is a numbered passage of a chat turn.
type passage struct {
	ref   int
	where string
	text  string
}

// chatMaterial is what a framed chat turn carries (prompt.Material).
type chatMaterial struct {
	assessment *assessment.Assessment // nil: none, or unreadable (given set)
	given      bool                   // an ASSESSMENT block was present
	passages   []passage
	documents  []string
}

// passageHeader is the line "[n] where" that starts a passage.
var passageHeader = regexp.MustCompile(`^\[(\d+)\] ?(.*)$`)

// chatMaterialOf reads the chat blocks; framed is false when there are none.
func chatMaterialOf(blocks []block) (m chatMaterial, framed bool) {
	for _, b := range blocks {
		switch b.name {
		case "ASSESSMENT":
			m.given, framed = true, true
			var a assessment.Assessment
			if json.Unmarshal([]byte(b.body), &a) == nil && a.RiskLevel != "" {
				m.assessment = &a
			}
		case "PASSAGES":
			framed = true
			m.passages = append(m.passages, parsePassages(b.body)...)
		case "DOCUMENTS":
			framed = true
			for _, l := range strings.Split(b.body, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					m.documents = append(m.documents, l)
				}
			}
		}
	}
	return m, framed
}

// parsePassages reads "[n] where" headers, each followed by its text. A
// line of a passage that looks like a header of a number already seen is
// taken as text.
func parsePassages(body string) []passage {
	var out []passage
	seen := map[int]bool{}
	for _, line := range strings.Split(body, "\n") {
		if g := passageHeader.FindStringSubmatch(line); g != nil {
			if n, err := strconv.Atoi(g[1]); err == nil && !seen[n] {
				seen[n] = true
				out = append(out, passage{ref: n, where: strings.TrimSpace(g[2])})
				continue
			}
		}
		if len(out) == 0 {
			continue // text before the first header has no number to cite
		}
		p := &out[len(out)-1]
		if p.text != "" {
			p.text += "\n"
		}
		p.text += line
	}
	return out
}

// questionOf is the question of a framed turn: what follows "Question:"
// after the blocks (the rest of the outside text being our framing).
func questionOf(outside string) string {
	if i := strings.LastIndex(outside, "Question:"); i >= 0 {
		return strings.TrimSpace(outside[i+len("Question:"):])
	}
	return strings.TrimSpace(outside)
}

// maxCited bounds the passages one answer quotes.
const maxCited = 3

// ground writes the grounded part of a chat answer: the assessment's
// rating, a verbatim sentence of each passage that shares the most
// keywords with the question, cited [n] right after it, and the user's
// documents the question names.
func (m chatMaterial) ground(b *strings.Builder, question, topic string) {
	switch a := m.assessment; {
	case a != nil:
		fmt.Fprintf(b, "\nThe assessment rates this document %s risk (%d/100).", a.RiskLevel, a.OverallScore)
		if len(a.RiskFactors) > 0 {
			f := a.RiskFactors[0]
			fmt.Fprintf(b, " Its leading finding is %q (%s).", f.Title, f.Severity)
		}
		b.WriteString("\n")
	case m.given:
		b.WriteString("\nThe assessment I was given could not be read, so I cannot say how it rates the document.\n")
	}
	if len(m.passages) > 0 {
		kw := keywords(question, 12)
		chosen := relevant(m.passages, kw)
		if len(chosen) == 0 {
			fmt.Fprintf(b, "\nNone of the passages speaks to %s directly; the closest is:", topic)
			chosen = m.passages[:1]
		} else {
			b.WriteString("\nFrom the passages of the document:")
		}
		for _, p := range chosen {
			where := ""
			if p.where != "" {
				where = " (" + p.where + ")"
			}
			fmt.Fprintf(b, "\n- Passage %d%s says: \"%s\" [%d]", p.ref, where, quote(p.text, kw), p.ref)
		}
		b.WriteString("\n")
	}
	if len(m.documents) > 0 {
		named := namedDocuments(m.documents, question)
		if len(named) == 0 {
			fmt.Fprintf(b, "\nYou have %d document(s) on record; name one to ask about it.\n", len(m.documents))
		} else {
			b.WriteString("\nOf your documents, the question names:")
			for _, d := range named {
				b.WriteString("\n- " + d)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\nCheck the cited passages before relying on them; for legal advice, ask a lawyer.")
}

// relevant is the passages that share the most keywords with the
// question, at most maxCited, most shared first, then in the order given
// (best retrieved first).
func relevant(ps []passage, kw []string) []passage {
	type scored struct {
		p      passage
		shared int
	}
	var hits []scored
	for _, p := range ps {
		if n := len(containedWords(p.text, kw)); n > 0 {
			hits = append(hits, scored{p, n})
		}
	}
	slices.SortStableFunc(hits, func(a, b scored) int { return -cmp.Compare(a.shared, b.shared) })
	var out []passage
	for _, h := range hits[:min(maxCited, len(hits))] {
		out = append(out, h.p)
	}
	return out
}

// containedWords is the keywords that occur in text as words.
func containedWords(text string, kw []string) []string {
	words := map[string]bool{}
	for _, w := range keywords(text, len(text)) {
		words[w] = true
	}
	var out []string
	for _, k := range kw {
		if words[k] {
			out = append(out, k)
		}
	}
	return out
}

// quote is the sentence of text with the most keywords (the first one
// when none has any), verbatim and bounded as evidence is. Among equals a
// full sentence beats a heading: "1. Liability." says less than the
// clause that follows it.
func quote(text string, kw []string) string {
	lower := lowerSameLen(text)
	best, bestN, bestFull := evidence(text, 0, 0), -1, false
	for _, k := range kw {
		for off, tries := 0, 0; tries < maxTries; tries++ {
			i := strings.Index(lower[off:], k)
			if i < 0 {
				break
			}
			i += off
			off = i + len(k)
			s := evidence(text, i, i+len(k))
			n, full := len(containedWords(s, kw)), len(s) >= minGoodEvidence
			if n > bestN || n == bestN && full && !bestFull {
				best, bestN, bestFull = s, n, full
			}
		}
	}
	return best
}

// namedDocuments is the document lines ("name: level, score: summary")
// whose name, or name without its extension, the question mentions.
func namedDocuments(docs []string, question string) []string {
	q := strings.ToLower(question)
	var out []string
	for _, d := range docs {
		name, _, _ := strings.Cut(d, ": ")
		name = strings.ToLower(strings.TrimSpace(name))
		stem := strings.TrimSuffix(name, path.Ext(name))
		if name != "" && (strings.Contains(q, name) || (len(stem) >= 3 && strings.Contains(q, stem))) {
			out = append(out, d)
		}
	}
	return out
}
