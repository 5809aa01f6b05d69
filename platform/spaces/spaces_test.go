package spaces

import "testing"

func TestCollapse(t *testing.T) {
	if got := Collapse("  a\n\t b  c \u00a0"); got != "a b c" {
		t.Errorf("Collapse = %q", got)
	}
}
