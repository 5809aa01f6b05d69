package textbuf

import "testing"

func TestCap(t *testing.T) {
	b := New(5)
	b.WriteString("Grü")
	if b.Full() || b.Truncated() {
		t.Fatal("full too early")
	}
	b.WriteString("ße!")
	if got := b.String(); got != "Grüße" || !b.Truncated() || !b.Full() || b.Chars() != 5 {
		t.Fatalf("got %q truncated=%v chars=%d", got, b.Truncated(), b.Chars())
	}
	b.WriteString("more")
	if b.String() != "Grüße" {
		t.Fatal("wrote past the cap")
	}
	exact := New(3)
	exact.WriteString("abc")
	if exact.Truncated() || !exact.Full() {
		t.Fatal("exact fit must not be truncated")
	}
	exact.WriteString("")
	if exact.Truncated() {
		t.Fatal("empty write truncated")
	}
}
