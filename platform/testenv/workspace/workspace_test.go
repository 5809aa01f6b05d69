package workspace

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRootHoldsGoWorkAboveThisPackage(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "platform", "testenv", "workspace", "workspace.go")); err != nil {
		t.Fatalf("root %s does not hold this package: %v", root, err)
	}
}

func TestRootOutsideAWorkspaceFails(t *testing.T) {
	t.Chdir(t.TempDir())
	if root, err := Root(); err == nil {
		t.Fatalf("found a root %s above a fresh temporary directory", root)
	}
}
