package deploycheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	checkDockerfile(t, filepath.Join(repoRoot(t), "Dockerfile"))
}

// checkDockerfile checks pinned bases, a static build, and a final stage
// with a non-root user, a healthcheck and the OCI labels.
func checkDockerfile(t *testing.T, path string) {
	t.Helper()
	stages := map[string]bool{}
	var final []instruction // the last stage's instructions
	static := false
	for _, in := range parseDockerfile(t, path) {
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			base := f[len(f)-1]
			if len(f) >= 3 && strings.EqualFold(f[len(f)-2], "AS") {
				base, stages[strings.ToLower(f[len(f)-1])] = f[0], true
			}
			if base != "scratch" && !stages[strings.ToLower(base)] {
				if err := pinned(base); err != nil {
					t.Errorf("Dockerfile FROM %s: %v", in.args, err)
				}
			}
			final = nil
		case "ENV", "RUN":
			static = static || strings.Contains(in.args, "CGO_ENABLED=0")
		}
		final = append(final, in)
	}
	if !static {
		t.Error("Dockerfile: the binary is not built with CGO_ENABLED=0 (the final stage has no libc)")
	}
	user, health := "", ""
	labels := map[string]bool{}
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "HEALTHCHECK":
			health = in.args
		case "LABEL":
			for _, f := range strings.Fields(in.args) {
				if k, _, ok := strings.Cut(f, "="); ok {
					labels[k] = true
				}
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("Dockerfile: the final stage runs as %q, want a non-root USER", user)
	}
	if !strings.Contains(health, "CMD") || !strings.Contains(health, "healthcheck") {
		t.Errorf("Dockerfile: the final stage's HEALTHCHECK is %q, want CMD prism healthcheck", health)
	}
	for _, k := range []string{"title", "description", "source", "version", "revision", "created"} {
		if !labels["org.opencontainers.image."+k] {
			t.Errorf("Dockerfile: no LABEL org.opencontainers.image.%s", k)
		}
	}
}
