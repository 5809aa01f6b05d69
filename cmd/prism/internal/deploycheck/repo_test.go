package deploycheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the repository's root: four levels up, where go.work is.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// mustExist fails, naming what the file is for, when a file the
// deployment refers to is not in the repository.
func mustExist(t *testing.T, root, rel, why string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
		t.Errorf("%s is missing from the repository (%s): %v", rel, why, err)
	}
}

// documentedLine is a variable's line in .env.example, set or commented out.
var documentedLine = regexp.MustCompile(`^#?\s*([A-Z][A-Z0-9_]*)=`)

// envExample reads .env.example: every variable it documents (set or
// commented out) and those it sets, which docker compose will read from
// the .env copied from it.
func envExample(t *testing.T, root string) (documented map[string]bool, set map[string]string) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatalf(".env.example: %v", err)
	}
	defer f.Close()
	documented, set = map[string]bool{}, map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		m := documentedLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		documented[m[1]] = true
		if !strings.HasPrefix(line, "#") {
			set[m[1]] = strings.TrimSpace(strings.SplitN(line, "=", 2)[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return documented, set
}
