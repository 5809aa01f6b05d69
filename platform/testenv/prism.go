package testenv

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aiprism/prism/platform/testenv/workspace"
)

// PrismBinary returns the path of a prism binary built from this
// workspace (go build ./cmd/prism at the root that holds go.work), for
// tests that run it as production does: `prism extract-worker`, roles as
// processes. It is built without the race detector whatever the test
// binary was built with. The first call in a test process builds it
// (seconds with a warm build cache); later calls return the same path. A
// failed build fails the test with the compiler's output.
func PrismBinary(t testing.TB) string {
	t.Helper()
	bin, err := prismBinary()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return bin
}

// prismBinary is the test process's cache of the build. It is package
// state because every test of the process shares one build; OnceValues
// reports a failed build to every caller.
var prismBinary = sync.OnceValues(buildPrism)

// buildPrism builds into a directory named after the workspace root: the
// test processes of one checkout share one file instead of leaving a
// binary behind per run, and other checkouts on the machine have their
// own. Each process builds afresh (the build cache makes that cheap) and
// renames its build into place, so a process running the previous file
// keeps it intact.
func buildPrism() (string, error) {
	root, err := workspace.Root()
	if err != nil {
		return "", fmt.Errorf("build prism: %w", err)
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build prism: the go command is needed on PATH: %w", err)
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "prism-test-bin-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build prism: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("build prism: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(gocmd, "build", "-o", filepath.Join(tmp, "prism"), "./cmd/prism")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build prism: go build ./cmd/prism in %s: %w\n%s", root, err, out)
	}
	bin := filepath.Join(dir, "prism")
	if err := os.Rename(filepath.Join(tmp, "prism"), bin); err != nil {
		return "", fmt.Errorf("build prism: %w", err)
	}
	return bin, nil
}
