package pdf

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/textbuf"
)

// testEngine starts PDFium with a compilation cache shared by test runs,
// so only the first run on a machine pays for compiling the module.
func testEngine(tb testing.TB) *Engine {
	tb.Helper()
	eng, err := NewEngine(context.Background(), EngineConfig{CacheDir: filepath.Join(os.TempDir(), "prism-extractor-test-wazero")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { eng.Close() })
	return eng
}

func TestPagesAndMetadata(t *testing.T) {
	eng := testEngine(t)
	out := textbuf.New(0)
	meta, err := eng.Extract(corpus.ReadFile(t, "vendor-contract/vendor-contract.libreoffice.pdf"), out, Limits{MaxPages: 100})
	if err != nil {
		t.Fatal(err)
	}
	if meta.Pages != 3 || meta.Title != "Master Services Agreement MSA-2024-0117 (legal review copy)" || meta.Author != "Harbor Point Bank plc, Legal Operations" {
		t.Fatalf("meta = %+v", meta)
	}
	text := out.String()
	if !strings.HasPrefix(text, "--- page 1 ---\n") || !strings.Contains(text, "\n--- page 3 ---\n") {
		t.Fatalf("page markers missing:\n%.300s", text)
	}
}

func TestHostile(t *testing.T) {
	eng := testEngine(t)
	for file, class := range map[string]string{
		"hostile/encrypted-user-password.pdf": reason.Encrypted,
		"hostile/scanned-image-only.pdf":      reason.NeedsOCR,
		"hostile/truncated.pdf":               reason.CorruptPDF,
	} {
		_, err := eng.Extract(corpus.ReadFile(t, file), textbuf.New(0), Limits{MaxPages: 100})
		if got := reason.ClassOf(err, ""); got != class {
			t.Errorf("%s: class %q (%v), want %q", file, got, err, class)
		}
	}
	_, err := eng.Extract(corpus.ReadFile(t, "large/vendor-contract.long.libreoffice.pdf"), textbuf.New(0), Limits{MaxPages: 10})
	if reason.ClassOf(err, "") != reason.PDFLimits {
		t.Errorf("page cap: %v", err)
	}
	_, err = eng.Extract(corpus.ReadFile(t, "large/vendor-contract.long.libreoffice.pdf"), textbuf.New(0), Limits{MaxObjects: 10})
	if reason.ClassOf(err, "") != reason.PDFLimits {
		t.Errorf("object cap: %v", err)
	}
	var re *reason.Error
	if !errors.As(err, &re) {
		t.Fatal("not a reason.Error")
	}
}

func TestTruncatedOutput(t *testing.T) {
	eng := testEngine(t)
	out := textbuf.New(500)
	_, err := eng.Extract(corpus.ReadFile(t, "large/vendor-contract.long.libreoffice.pdf"), out, Limits{})
	if err != nil || !out.Truncated() || out.Chars() != 500 {
		t.Fatalf("err=%v truncated=%v chars=%d", err, out.Truncated(), out.Chars())
	}
}
