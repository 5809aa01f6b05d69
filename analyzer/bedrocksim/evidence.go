package bedrocksim

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// evidence returns the sentence of doc around [ms,me), or a window of at
// most MaxEvidenceChars bytes around it, as an exact substring of doc.
func evidence(doc string, ms, me int) string {
	s, e := sentenceStart(doc, ms), sentenceEnd(doc, me)
	if e-s > MaxEvidenceChars {
		half := (MaxEvidenceChars - (me - ms)) / 2
		s = max(s, ms-half)
		e = min(e, s+MaxEvidenceChars)
		s = max(s, e-MaxEvidenceChars)
		for s < ms && !utf8.RuneStart(doc[s]) {
			s++
		}
		for e > me && e < len(doc) && !utf8.RuneStart(doc[e]) {
			e--
		}
		// Prefer whole words at the edges of the window.
		if k := strings.IndexByte(doc[s:ms], ' '); k >= 0 && k < 40 {
			s += k + 1
		}
		if k := strings.LastIndexByte(doc[me:e], ' '); k >= 0 && e-(me+k) < 40 {
			e = me + k
		}
	}
	return strings.TrimSpace(doc[s:e])
}

const sentenceScan = 2000

func isSpaceByte(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

// startsBlock reports whether rest, the text after a line break, begins a
// new block: a blank line, a list item, a numbered clause or a section sign.
// Such a break ends a sentence even without punctuation.
func startsBlock(rest string) bool {
	line, _, _ := strings.Cut(rest, "\n")
	line = strings.TrimLeft(line, " \t")
	switch {
	case strings.TrimSpace(line) == "":
		return true
	case strings.HasPrefix(line, "- "), strings.HasPrefix(line, "* "), strings.HasPrefix(line, "• "),
		strings.HasPrefix(line, "§"), strings.HasPrefix(line, "#"):
		return true
	}
	i := 0
	for i < len(line) && i < 4 && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	return i > 0 && i < len(line) && (line[i] == '.' || line[i] == ')')
}

// afterHeading reports whether the line break at doc[i] ends a heading: a
// short line without closing punctuation, followed by a capitalised line.
func afterHeading(doc string, i int) bool {
	lineStart := strings.LastIndexByte(doc[:i], '\n') + 1
	line := strings.TrimSpace(doc[lineStart:i])
	if line == "" || len(line) > 50 {
		return false
	}
	last, _ := utf8.DecodeLastRuneInString(line)
	next, _ := utf8.DecodeRuneInString(strings.TrimLeft(doc[i+1:], " \t"))
	return (unicode.IsLetter(last) || unicode.IsDigit(last)) && unicode.IsUpper(next)
}

func sentenceStart(doc string, ms int) int {
	lo := max(0, ms-sentenceScan)
	for i := ms - 1; i >= lo; i-- {
		switch c := doc[i]; {
		case (c == '.' || c == '!' || c == '?' || c == ';') && i+1 < len(doc) && isSpaceByte(doc[i+1]):
			return i + 1
		case c == '\n' && (startsBlock(doc[i+1:]) || afterHeading(doc, i)):
			return i + 1
		}
	}
	return lo
}

func sentenceEnd(doc string, me int) int {
	hi := min(len(doc), me+sentenceScan)
	for i := me; i < hi; i++ {
		switch c := doc[i]; {
		case (c == '.' || c == '!' || c == '?' || c == ';') && (i+1 == len(doc) || isSpaceByte(doc[i+1])):
			return i + 1
		case c == '\n' && (startsBlock(doc[i+1:]) || afterHeading(doc, i)):
			return i
		}
	}
	return hi
}
