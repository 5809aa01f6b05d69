package bedrocksim

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// stopwords are skipped when picking the keywords of a chat question.
var stopwords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`about above after again against also because been before being below between both cannot could does doing down during each from further have having here hers herself himself into itself just more most myself only other ought ourselves over same should some such than that their theirs them themselves then there these they this those through under until very were what when where which while whom with would your yours yourself please tell explain give want know help need like make describe thanks thank
	aber alle also auch bitte dann dass denn diese dieser dieses doch durch eine einem einen einer eines habe haben hier ihre immer kann können mehr mein meine mich mit nach nicht noch oder ohne sehr sein seine sich sind über unter viel wann warum was weil welche wenn werden wie wird wir wurde zum zur zwischen`) {
		m[w] = true
	}
	return m
}()

// keywords returns up to n distinctive words of text, most frequent first.
func keywords(text string, n int) []string {
	count := map[string]int{}
	var order []string
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && r != '-' }) {
		w = strings.Trim(w, "-")
		if utf8.RuneCountInString(w) < 4 || stopwords[w] {
			continue
		}
		if count[w] == 0 {
			order = append(order, w)
		}
		count[w]++
	}
	slices.SortStableFunc(order, func(a, b string) int { return -cmp.Compare(count[a], count[b]) })
	return order[:min(n, len(order))]
}

var chatOpeners = []string{
	"The key consideration with %s is to weigh the benefits against the risks and to record the decision.",
	"For %s, start by clarifying the goal, then check the constraints, and agree on next steps with the people involved.",
	"%s depends on context; the safest course is to review the relevant documents and ask a specialist if in doubt.",
	"A sound approach to %s is to gather the facts first, compare the options, and document why one was chosen.",
}

// chatAnswer builds a plausible, clearly simulated answer from the
// question's keywords. A turn framed by prompt.ChatUser gets an answer
// grounded in its material (see grounded); a framed document, its risk
// findings.
func chatAnswer(msg string, m *matcher, sum uint64) string {
	blocks, outside := splitBlocks(msg)
	mat, framed := chatMaterialOf(blocks)
	question := outsideDocument(msg)
	if framed {
		question = questionOf(outside)
	}
	kw := keywords(question, 4)
	topic := "your question"
	if len(kw) > 0 {
		topic = joinWords(kw)
	}
	var b strings.Builder
	b.WriteString("[bedrocksim] Simulated answer: this endpoint is a rule-based simulator, not a language model.\n\n")
	b.WriteString(upperFirst(fmt.Sprintf(chatOpeners[sum%uint64(len(chatOpeners))], topic)))
	b.WriteString("\n")
	if framed {
		mat.ground(&b, question, topic)
		return b.String()
	}
	for i, k := range kw {
		fmt.Fprintf(&b, "\n%d. %s: clarify what it means in your situation and who is responsible for it.", i+1, upperFirst(k))
	}
	if doc, framed := documentText(msg); framed {
		a := analyze(doc, m)
		if len(a.RiskFactors) == 0 {
			b.WriteString("\n\nThe document contains none of the simulator's risk terms.")
		} else {
			b.WriteString("\n\nIn the document, note in particular:")
			for _, f := range a.RiskFactors[:min(3, len(a.RiskFactors))] {
				fmt.Fprintf(&b, "\n- %s (%s): %q", f.Title, f.Severity, f.Evidence)
			}
		}
	}
	return b.String()
}

func joinWords(w []string) string {
	if len(w) == 1 {
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " and " + w[len(w)-1]
}

func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}
