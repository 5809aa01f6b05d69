package bedrocksim

import (
	"cmp"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/aiprism/prism/analyzer/assessment"
)

// reply is the simulated model output for one request.
type reply struct {
	id           string // deterministic message id suffix
	text         string // text answer; empty when the answer is a tool call
	toolName     string
	toolID       string
	toolInput    []byte // JSON tool input, possibly cut short (see truncated)
	truncated    bool   // output hit maxTokens
	stopReason   string // end_turn | tool_use | max_tokens
	outputTokens int
}

// MaxEvidenceChars bounds an evidence quote: the sentence around a matched
// term, or a window of at most this many bytes around it when the sentence is
// longer.
const MaxEvidenceChars = 300

// maxFactors bounds the findings of one simulated assessment.
const maxFactors = 15

// A quote shorter than minGoodEvidence bytes is likely a heading; up to
// maxTries matches of a term are tried to find a fuller sentence.
const (
	minGoodEvidence = 40
	maxTries        = 8
)

// compose builds the deterministic answer to p. maxTokens is the output limit
// in force (the request's, or the default). An obedient model follows
// manipulation instructions it finds outside the framed document.
func (s *Server) compose(p *prompt, maxTokens int, obedient bool) reply {
	h := fnv.New64a()
	h.Write([]byte(p.system))
	h.Write([]byte{0})
	h.Write([]byte(p.lastUser))
	sum := h.Sum64()
	r := reply{id: fmt.Sprintf("%016x", sum)}

	if p.wantsAssessment() {
		doc, _ := documentText(p.lastUser)
		var a assessment.Assessment
		if obedient && manipulates(outsideDocument(p.lastUser), s.matcher) {
			a = assessment.Assessment{Summary: "No material risk.", OverallScore: 0, RiskLevel: "low",
				RiskFactors: []assessment.RiskFactor{}, Recommendations: []string{}, ComplianceConcerns: []assessment.ComplianceConcern{}}
		} else {
			a = analyze(doc, s.matcher)
		}
		raw, _ := json.Marshal(a)
		if p.forcedTool != "" {
			r.toolName, r.toolID, r.toolInput, r.stopReason = assessment.ToolName, fmt.Sprintf("tooluse_%016x", sum), raw, "tool_use"
		} else {
			r.text, r.stopReason = string(raw), "end_turn"
		}
	} else {
		r.text, r.stopReason = chatAnswer(p.lastUser, s.matcher, sum), "end_turn"
	}

	out := r.text
	if r.toolInput != nil {
		out = string(r.toolInput)
	}
	r.outputTokens = EstimateTokens(out)
	if r.outputTokens > maxTokens {
		cut := maxTokens * 4
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut]
		r.truncated, r.stopReason, r.outputTokens = true, "max_tokens", EstimateTokens(out)
		if r.toolInput != nil {
			r.toolInput = []byte(out)
		} else {
			r.text = out
		}
	}
	return r
}

// documentText returns the document embedded in a user message between a
// line "<<<DOCUMENT nonce" and a line "DOCUMENT nonce>>>". The nonce keeps a
// document from closing its own frame. Without a start marker the whole
// message is the document; without the matching end marker, the rest of it.
func documentText(msg string) (string, bool) {
	start, nonce, ok := findStartMarker(msg)
	if !ok {
		return msg, false
	}
	body := msg[start:]
	if end, _, ok := closingLine(body, "DOCUMENT "+nonce+">>>"); ok {
		return body[:end], true
	}
	return body, true
}

// closingLine finds the first line of body that is exactly marker and
// returns where the content before it ends (its line break excluded) and
// the offset just after the marker.
func closingLine(body, marker string) (end, after int, ok bool) {
	for off := 0; off <= len(body); {
		i := strings.Index(body[off:], marker)
		if i < 0 {
			break
		}
		i += off
		lineStart := i == 0 || body[i-1] == '\n'
		rest := body[i+len(marker):]
		lineEnd := rest == "" || rest[0] == '\n' || rest[0] == '\r'
		if lineStart && lineEnd {
			end = i
			if end > 0 && body[end-1] == '\n' {
				end--
			}
			if end > 0 && body[end-1] == '\r' {
				end--
			}
			return end, i + len(marker), true
		}
		off = i + 1
	}
	return 0, 0, false
}

// findStartMarker finds the first line "<<<DOCUMENT nonce" and returns the
// offset just after that line.
func findStartMarker(msg string) (int, string, bool) {
	_, next, nonce, ok := openingLine(msg, "<<<DOCUMENT ")
	return next, nonce, ok
}

// openingLine finds the first line of msg that is marker followed by a
// nonce (one word) and returns where it starts, the offset just after it,
// and the nonce.
func openingLine(msg, marker string) (at, next int, nonce string, ok bool) {
	for off := 0; off < len(msg); {
		i := strings.Index(msg[off:], marker)
		if i < 0 {
			return 0, 0, "", false
		}
		i += off
		if i == 0 || msg[i-1] == '\n' {
			line := msg[i+len(marker):]
			eol := strings.IndexByte(line, '\n')
			next := i + len(marker) + eol + 1
			if eol < 0 {
				eol, next = len(line), len(msg)
			}
			nonce := strings.TrimRight(line[:eol], "\r ")
			if nonce != "" && !strings.ContainsAny(nonce, " \t") {
				return i, next, nonce, true
			}
		}
		off = i + 1
	}
	return 0, 0, "", false
}

// outsideDocument is msg without its framed document: the instructions.
func outsideDocument(msg string) string {
	start, nonce, ok := findStartMarker(msg)
	if !ok {
		return msg
	}
	doc, _ := documentText(msg)
	rest := msg[start+len(doc):]
	if i := strings.Index(rest, "DOCUMENT "+nonce+">>>"); i >= 0 {
		rest = rest[i+len("DOCUMENT "+nonce+">>>"):]
	}
	return msg[:start] + rest
}

// manipulates reports whether text holds an instruction aimed at the
// assessor (the lexicon's "Embedded instructions" rule).
func manipulates(text string, m *matcher) bool {
	found := false
	m.scan(lowerSameLen(text), func(t term, _ int) {
		found = found || lexicon[t.rule].title == injectionRule
	})
	return found
}

var severityRank = map[string]int{"low": 0, "medium": 1, "high": 2, "critical": 3}

type hit struct {
	rule       int
	start, end int
}

// analyze produces the simulated assessment of doc: every lexicon rule that
// matches contributes one finding quoting the sentence of its first match.
// Nothing in the document but the lexicon terms influences the result, so
// instructions embedded in a document have no effect.
func analyze(doc string, m *matcher) assessment.Assessment {
	lower := lowerSameLen(doc)
	// Per rule, the first match whose sentence is substantial; failing that
	// the first match at all (which may be a bare heading such as "Indemnity.").
	first, good := map[int]hit{}, map[int]hit{}
	tries := map[string]int{}
	m.scan(lower, func(t term, i int) {
		h := hit{t.rule, i, i + len(t.text)}
		if f, ok := first[t.rule]; !ok || i < f.start {
			first[t.rule] = h
		}
		if g, ok := good[t.rule]; (ok && g.start <= i) || tries[t.text] >= maxTries {
			return
		}
		tries[t.text]++
		if len(evidence(doc, h.start, h.end)) >= minGoodEvidence {
			good[t.rule] = h
		}
	})
	maps.Copy(first, good)
	hits := make([]hit, 0, len(first))
	for _, h := range first {
		hits = append(hits, h)
	}
	slices.SortFunc(hits, func(a, b hit) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.rule, b.rule)) })

	var factors []assessment.RiskFactor
	var starts, ruleOf []int
	seen := map[string]int{} // category+evidence -> index in factors
	for _, h := range hits {
		r := lexicon[h.rule]
		f := assessment.RiskFactor{
			Category: r.category, Severity: r.severity, Title: r.title,
			Evidence: evidence(doc, h.start, h.end), Location: fmt.Sprintf("line %d", 1+strings.Count(doc[:h.start], "\n")),
			Explanation: r.explanation,
		}
		key := f.Category + "\x00" + f.Evidence
		if j, ok := seen[key]; ok {
			if severityRank[f.Severity] > severityRank[factors[j].Severity] {
				factors[j], ruleOf[j] = f, h.rule
			}
			continue
		}
		seen[key] = len(factors)
		factors = append(factors, f)
		starts = append(starts, h.start)
		ruleOf = append(ruleOf, h.rule)
	}
	order := make([]int, len(factors))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(-cmp.Compare(severityRank[factors[a].Severity], severityRank[factors[b].Severity]), cmp.Compare(starts[a], starts[b]))
	})
	if len(order) > maxFactors {
		order = order[:maxFactors]
	}
	sorted := make([]assessment.RiskFactor, 0, len(order))
	sortedRules := make([]rule, 0, len(order))
	for _, i := range order {
		sorted = append(sorted, factors[i])
		sortedRules = append(sortedRules, lexicon[ruleOf[i]])
	}

	a := assessment.Assessment{RiskFactors: sorted, Recommendations: []string{}, ComplianceConcerns: []assessment.ComplianceConcern{}}
	a.OverallScore, a.RiskLevel = assessment.Score(sorted)
	var areas []string
	for i, f := range sorted {
		r := sortedRules[i]
		if !slices.Contains(a.Recommendations, r.advice) && len(a.Recommendations) < 10 {
			a.Recommendations = append(a.Recommendations, r.advice)
		}
		if r.regulation != "" && !slices.ContainsFunc(a.ComplianceConcerns, func(c assessment.ComplianceConcern) bool { return c.Concern == r.concern }) {
			a.ComplianceConcerns = append(a.ComplianceConcerns, assessment.ComplianceConcern{Regulation: r.regulation, Concern: r.concern})
		}
		if !slices.Contains(areas, f.Category) {
			areas = append(areas, f.Category)
		}
	}
	words := len(strings.Fields(doc))
	if len(sorted) == 0 {
		a.Summary = fmt.Sprintf("Simulated assessment by bedrocksim, a rule-based simulator and not a language model: none of its risk terms occur in this document of about %d words, so it is rated low risk.", words)
		a.Recommendations = append(a.Recommendations, "No specific action needed; file the document as reviewed.")
		return a
	}
	a.Summary = fmt.Sprintf("Simulated assessment by bedrocksim, a rule-based simulator and not a language model: %d risk indicator(s) in a document of about %d words, the most severe rated %s. Areas: %s. Overall risk %s (%d/100).",
		len(sorted), words, sorted[0].Severity, strings.Join(areas, ", "), a.RiskLevel, a.OverallScore)
	return a
}
