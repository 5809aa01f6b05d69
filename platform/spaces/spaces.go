// Package spaces compares texts the way people read them: runs of white
// space (line breaks, tabs, no-break spaces) count as one space. The
// analyzer checks evidence quotes this way and the corpus tests match
// manifest phrases this way, so both use this one definition.
package spaces

import (
	"strings"
	"unicode"
)

// Collapse trims s and replaces every run of Unicode white space with a
// single ASCII space.
func Collapse(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}
