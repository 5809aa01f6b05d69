package corpus

import "testing"

func TestMatchRule(t *testing.T) {
	m := NewMatcher("renews\u00a0automatically\r\n  for\tsuccessive ﬁles")
	if !m.Contains("renews automatically for successive files") {
		t.Fatal("whitespace and NFKC not applied")
	}
	if m.Contains("Renews automatically") {
		t.Fatal("match must be case-sensitive")
	}
}
