// Package textbuf accumulates extracted text under a character cap.
//
// Every parser writes through a Builder so that output is bounded while it
// is produced, not after: a 50,000-row sheet or a PDF with thousands of
// pages stops costing memory once the cap is reached, and the result says
// it was truncated.
package textbuf

import (
	"strings"
	"unicode/utf8"
)

// Builder is a strings.Builder with a cap counted in characters (runes).
// The zero value has no room; use New.
type Builder struct {
	sb        strings.Builder
	max       int
	n         int
	truncated bool
}

// New returns a Builder that keeps at most maxChars characters. A maxChars
// of zero or less means no cap.
func New(maxChars int) *Builder {
	if maxChars <= 0 {
		maxChars = int(^uint(0) >> 1)
	}
	return &Builder{max: maxChars}
}

// WriteString appends s, cutting it at the cap. It never fails; the error
// is there to satisfy io.StringWriter.
func (b *Builder) WriteString(s string) (int, error) {
	if b.truncated || s == "" {
		return 0, nil
	}
	room := b.max - b.n
	c := utf8.RuneCountInString(s)
	if c <= room {
		b.sb.WriteString(s)
		b.n += c
		return len(s), nil
	}
	i, k := 0, 0
	for i = range s {
		if k == room {
			break
		}
		k++
	}
	b.sb.WriteString(s[:i])
	b.n += k
	b.truncated = true
	return i, nil
}

// Write is WriteString for byte slices.
func (b *Builder) Write(p []byte) (int, error) { return b.WriteString(string(p)) }

// Line writes s followed by a newline.
func (b *Builder) Line(s string) {
	b.WriteString(s)
	b.WriteString("\n")
}

// Full reports whether the cap has been reached: callers stop producing.
func (b *Builder) Full() bool { return b.truncated || b.n >= b.max }

// Truncated reports whether some text was dropped at the cap.
func (b *Builder) Truncated() bool { return b.truncated }

// MarkTruncated records that text was dropped for a reason other than the
// cap (e.g. a page limit), so the result is flagged the same way.
func (b *Builder) MarkTruncated() { b.truncated = true }

// Chars is the number of characters kept.
func (b *Builder) Chars() int { return b.n }

// Remaining is the number of characters that still fit.
func (b *Builder) Remaining() int { return b.max - b.n }

// String returns the text kept so far.
func (b *Builder) String() string { return b.sb.String() }
