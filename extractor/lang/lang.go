// Package lang guesses the language of extracted text from stopword
// counts. It is a hint for routing and prompts (which model, which
// language to answer in), so a cheap, dependency-free guess is enough:
// function words dominate every text and differ sharply between
// languages.
package lang

import (
	"strings"
	"unicode"
)

// stopwords per ISO 639-1 code: frequent function words that are rare in
// the other languages listed.
var stopwords = map[string][]string{
	"en": {"the", "and", "of", "to", "in", "is", "that", "for", "with", "as", "by", "this", "are", "be", "on", "or", "from", "at", "which", "not", "have", "has", "shall", "will", "any"},
	"de": {"der", "die", "und", "das", "den", "ist", "nicht", "mit", "von", "sich", "des", "auf", "für", "im", "dem", "ein", "eine", "zu", "wird", "werden", "auch", "bei", "oder", "nach", "wurde"},
	"fr": {"le", "la", "les", "et", "des", "du", "est", "une", "que", "pour", "dans", "qui", "au", "sur", "pas", "par", "sont", "aux", "avec", "ce"},
	"es": {"el", "los", "las", "y", "del", "que", "por", "una", "para", "con", "es", "se", "su", "al", "lo", "como", "más", "pero", "sus", "fue"},
	"it": {"il", "di", "che", "e", "della", "per", "una", "sono", "del", "non", "gli", "con", "alla", "delle", "nel", "anche", "dei", "come", "questo", "ha"},
	"nl": {"de", "het", "een", "van", "en", "is", "dat", "op", "te", "voor", "niet", "met", "zijn", "aan", "wordt", "ook", "bij", "door", "als", "naar"},
}

var index = func() map[string][]string {
	m := map[string][]string{}
	for code, words := range stopwords {
		for _, w := range words {
			m[w] = append(m[w], code)
		}
	}
	return m
}()

// maxWords bounds the work on huge documents: the first words decide.
const maxWords = 20000

// Guess returns the ISO 639-1 code of the most likely language of text,
// or "" when the text has too few stopwords to tell (tables of numbers,
// very short texts) or the leader is not clear.
func Guess(text string) string {
	counts := map[string]int{}
	total, words := 0, 0
	for w := range strings.FieldsFuncSeq(text, func(r rune) bool { return !unicode.IsLetter(r) }) {
		if words++; words > maxWords {
			break
		}
		for _, code := range index[strings.ToLower(w)] {
			counts[code]++
			total++
		}
	}
	best, second, code := 0, 0, ""
	for c, n := range counts {
		switch {
		case n > best || (n == best && c < code):
			best, second, code = n, best, c
		case n > second:
			second = n
		}
	}
	if best < 5 || best*10 < second*13 {
		return ""
	}
	return code
}
