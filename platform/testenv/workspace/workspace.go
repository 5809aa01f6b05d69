// Package workspace finds the repository root from a test: the directory
// holding go.work. Tests run in their package's directory, anywhere below
// it. It is apart from testenv so that tests needing only the root (the
// corpus lives beside it) do not link NATS, PostgreSQL and S3.
package workspace

import (
	"fmt"
	"os"
	"path/filepath"
)

// Root returns the nearest directory at or above the working directory
// that holds go.work.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("workspace root: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("workspace root: no go.work at or above %s", wd)
		}
	}
}
