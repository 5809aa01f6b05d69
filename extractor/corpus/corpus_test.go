package corpus

import (
	"strings"
	"testing"
)

func TestMatchRule(t *testing.T) {
	m := NewMatcher("renews\u00a0automatically\r\n  for\tsuccessive ﬁles")
	if !m.Contains("renews automatically for successive files") {
		t.Fatal("whitespace and NFKC not applied")
	}
	if m.Contains("Renews automatically") {
		t.Fatal("match must be case-sensitive")
	}
}

// A missing corpus is reported with where it was looked for and how to
// point at it, the message MustDir fails a test with.
func TestDirNamesWhereItLooked(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(DirEnv, empty)
	_, err := Dir()
	if err == nil || !strings.Contains(err.Error(), empty) || !strings.Contains(err.Error(), DirEnv) {
		t.Fatalf("err = %v, want one naming %s and %s", err, empty, DirEnv)
	}
}
