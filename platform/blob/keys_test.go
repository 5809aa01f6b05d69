package blob_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aiprism/prism/platform/blob"
)

func TestSafeFilename(t *testing.T) {
	long := strings.Repeat("a", 300)
	for _, tc := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"Quarterly Report (final).docx", "Quarterly_Report_(final).docx"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\bob\contract.pdf`, "contract.pdf"},
		{"..", "file"},
		{".", "file"},
		{"", "file"},
		{"/", "file"},
		{"dir/", "file"},
		{".bashrc", "bashrc"},
		{"a\x00b\x1bc\x7f.txt", "abc.txt"},
		{"line\nbreak.txt", "line_break.txt"},
		{"invoice\u202Efdp.exe", "invoicefdp.exe"}, // right-to-left override dropped
		{"résumé 2024.pdf", "résumé_2024.pdf"},
		{"合同.pdf", "合同.pdf"},
		{"a  b\t\tc", "a_b_c"},
		{"x;rm -rf *|$(id)`.sh", "x_rm_-rf_(id)_.sh"},
		{"%2e%2e%2fsecret", "2e_2e_2fsecret"},
		{"bad\xffutf8.txt", "badutf8.txt"},
		{"___", "file"},
		{long + ".pdf", strings.Repeat("a", 116) + ".pdf"},
		{long, strings.Repeat("a", 120)},
	} {
		got := blob.SafeFilename(tc.in)
		if got != tc.want {
			t.Errorf("SafeFilename(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSafeFilenameInvariants(t *testing.T) {
	inputs := []string{
		strings.Repeat("é", 200) + ".pdf",
		strings.Repeat("界", 100),
		"../" + strings.Repeat(".", 50),
		"a/b\\c/../..",
		"\u200b\u200d\ufeff",
	}
	for _, in := range inputs {
		got := blob.SafeFilename(in)
		switch {
		case got == "" || got == "." || got == "..":
			t.Errorf("SafeFilename(%q) = %q", in, got)
		case strings.ContainsAny(got, "/\\") || strings.HasPrefix(got, "."):
			t.Errorf("SafeFilename(%q) = %q has a separator or leading dot", in, got)
		case len(got) > 120 || !utf8.ValidString(got):
			t.Errorf("SafeFilename(%q) = %q is too long or invalid UTF-8", in, got)
		}
	}
}

func TestKeys(t *testing.T) {
	at := time.Date(2025, 1, 2, 23, 30, 0, 0, time.FixedZone("UTC-5", -5*3600)) // 2025-01-03 in UTC
	if got, want := blob.Key("alice", "doc-42", "My Contract.pdf", at), "uploads/2025/01/03/alice/doc-42/My_Contract.pdf"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
	if got, want := blob.Key("../x", "", "../../a", at), "uploads/2025/01/03/x/unknown/a"; got != want {
		t.Errorf("Key with hostile parts = %q, want %q", got, want)
	}
	if got, want := blob.TextKey("alice", "doc-42", "9f86d081884c7d65"), "text/alice/doc-42/9f86d081884c7d65.txt"; got != want {
		t.Errorf("TextKey = %q, want %q", got, want)
	}
	if got, want := blob.TextKey("a/b", "d", "../run"), "text/a_b/d/run.txt"; got != want {
		t.Errorf("TextKey with hostile parts = %q, want %q", got, want)
	}
}
