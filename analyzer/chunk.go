package analyzer

import (
	"strings"
	"unicode/utf8"
)

// Split cuts text into chunks of at most maxBytes, preferring paragraph
// breaks, then line breaks, then sentence ends, then spaces, so a finding's
// evidence is rarely cut in two. Chunks are exact substrings of text and
// together are all of it, but for a trailing remainder of only whitespace.
func Split(text string, maxBytes int) []string {
	if maxBytes <= 0 || len(text) <= maxBytes {
		return []string{text}
	}
	var chunks []string
	for len(text) > maxBytes {
		cut := bestCut(text, maxBytes)
		chunks = append(chunks, text[:cut])
		text = text[cut:]
	}
	if strings.TrimSpace(text) != "" {
		chunks = append(chunks, text)
	}
	return chunks
}

// bestCut returns where to end a chunk of at most max bytes: after the
// last paragraph break in its second half, else line break, sentence end or
// space, else at the last rune boundary.
func bestCut(text string, max int) int {
	window := text[:max]
	for _, sep := range []string{"\n\n", "\n", ". ", " "} {
		if i := strings.LastIndex(window, sep); i >= max/2 {
			return i + len(sep)
		}
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	if cut == 0 {
		return max
	}
	return cut
}
