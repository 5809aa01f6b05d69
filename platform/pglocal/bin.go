package pglocal

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errNoBinaries is the message every discovery failure ends with, naming
// both ways out.
const errNoBinaries = "PostgreSQL server binaries not found; install with apt-get install -y postgresql or set DATABASE_URL"

// findBinDir returns a directory holding initdb and postgres: explicit,
// else pg_config --bindir, else the newest /usr/lib/postgresql/*/bin
// (Debian and Ubuntu keep server binaries off PATH), else PATH.
func findBinDir(ctx context.Context, explicit string) (string, error) {
	if explicit != "" {
		if !hasServerBinaries(explicit) {
			return "", fmt.Errorf("pglocal: BinDir %s has no initdb and postgres executables: %s", explicit, errNoBinaries)
		}
		return explicit, nil
	}
	var tried []string
	if dir := pgConfigBinDir(ctx); dir != "" {
		if hasServerBinaries(dir) {
			return dir, nil
		}
		tried = append(tried, dir+" (from pg_config)")
	}
	if dir := newestDebianBinDir(); dir != "" {
		return dir, nil
	}
	tried = append(tried, "/usr/lib/postgresql/*/bin")
	if initdb, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(initdb)
		if hasServerBinaries(dir) {
			return dir, nil
		}
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("pglocal: looked in %s: %s", strings.Join(tried, ", "), errNoBinaries)
}

func pgConfigBinDir(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// newestDebianBinDir picks the highest major version, compared
// numerically so 10 sorts after 9.
func newestDebianBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err != nil {
			return -1
		}
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int {
		va, vb := version(a), version(b)
		switch {
		case va > vb:
			return -1
		case va < vb:
			return 1
		}
		return 0
	})
	for _, dir := range dirs {
		if hasServerBinaries(dir) {
			return dir
		}
	}
	return ""
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}
