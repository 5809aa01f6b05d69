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
	if got, want := blob.Key("../x", "", "../../a", at), "uploads/2025/01/03/~x/unknown/a"; got != want {
		t.Errorf("Key with hostile parts = %q, want %q", got, want)
	}
	if got, want := blob.TextKey("alice", "doc-42", "9f86d081884c7d65"), "text/alice/doc-42/9f86d081884c7d65.txt"; got != want {
		t.Errorf("TextKey = %q, want %q", got, want)
	}
	if got, want := blob.TextKey("a/b", "d", "../run"), "text/~a_b/d/run.txt"; got != want {
		t.Errorf("TextKey with hostile parts = %q, want %q", got, want)
	}
	if got, want := blob.ExportKey("alice", "x1", "csv", at), "exports/alice/20250103T043000Z-x1.csv"; got != want {
		t.Errorf("ExportKey = %q, want %q", got, want)
	}
}

// A key belongs to the owner it was built for and to no other, whatever
// the ids look like: owners that sanitizing would merge ("a_b" and "a__b",
// "x" and "_x") keep apart, and keys of any other shape belong to nobody.
func TestOwnedBy(t *testing.T) {
	at := time.Date(2025, 1, 3, 4, 30, 0, 0, time.UTC)
	owners := []string{"alice", "bob", "a_b", "a__b", "x", "_x", "x-", "01J9ZK3V4T9QABCDEFGHJKMNPQ", strings.Repeat("z", 64)}
	for _, owner := range owners {
		keys := []string{
			blob.Key(owner, "doc-1", "contract.pdf", at),
			blob.TextKey(owner, "doc-1", "2"),
			blob.ExportKey(owner, "exp-1", "ndjson", at),
		}
		for _, key := range keys {
			if !blob.OwnedBy(key, owner) {
				t.Errorf("OwnedBy(%q, %q) = false, want true", key, owner)
			}
			for _, other := range owners {
				if other != owner && blob.OwnedBy(key, other) {
					t.Errorf("OwnedBy(%q, %q) = true: %q's key belongs to another owner", key, other, owner)
				}
			}
		}
	}
	for _, tc := range []struct{ key, owner string }{
		{"uploads/2025/01/03/alice/doc/../../../../bob/doc/f", "bob"}, // not the shape
		{"uploads/2025/01/03/alice/doc/f/extra", "alice"},             // too deep
		{"uploads/2025/01/03/alice//f", "alice"},                      // empty segment
		{"text/alice/doc/../2.txt", "alice"},                          // dot segment
		{"text/alice/2.txt", "alice"},                                 // too shallow
		{"elsewhere/alice/doc/2.txt", "alice"},                        // unknown prefix
		{"text/a.b/doc/2.txt", "a.b"},                                 // not a valid owner
		{"text/a*/doc/2.txt", "a*"},                                   // not a valid owner
		{"text/a b/doc/2.txt", "a b"},                                 // not a valid owner
		{blob.TextKey("a/b", "doc", "2"), "a_b"},                      // a hostile owner's key is nobody's
		{blob.TextKey("", "doc", "2"), "unknown"},                     // nor is an empty owner's
		{"", "alice"},
	} {
		if blob.OwnedBy(tc.key, tc.owner) {
			t.Errorf("OwnedBy(%q, %q) = true, want false", tc.key, tc.owner)
		}
	}
}
