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

// NATSServerBinary returns the path of a nats-server built from the
// version of github.com/nats-io/nats-server/v2 the workspace requires (the
// one the embedded servers run), for tests that run NATS nodes as
// processes of their own: a node killed with SIGKILL, restarted on its
// data. Built and cached like PrismBinary.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	bin, err := natsServerBinary()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return bin
}

// prismBinary and natsServerBinary are the test process's cache of the
// builds. They are package state because every test of the process shares
// one build; OnceValues reports a failed build to every caller.
var (
	prismBinary      = sync.OnceValues(func() (string, error) { return goBuild("prism", "./cmd/prism") })
	natsServerBinary = sync.OnceValues(func() (string, error) { return goBuild("nats-server", "github.com/nats-io/nats-server/v2") })
)

// goBuild builds pkg as name into a directory named after the workspace
// root: the test processes of one checkout share one file instead of
// leaving a binary behind per run, and other checkouts on the machine
// have their own. Each process builds afresh (the build cache makes that
// cheap) and renames its build into place, so a process running the
// previous file keeps it intact.
func goBuild(name, pkg string) (string, error) {
	root, err := workspace.Root()
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build %s: the go command is needed on PATH: %w", name, err)
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "prism-test-bin-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(gocmd, "build", "-o", filepath.Join(tmp, name), pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: go build %s in %s: %w\n%s", name, pkg, root, err, out)
	}
	bin := filepath.Join(dir, name)
	if err := os.Rename(filepath.Join(tmp, name), bin); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return bin, nil
}
