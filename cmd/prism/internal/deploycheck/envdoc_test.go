package deploycheck

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
)

// recorder is a config.Getenv over a fixed environment that notes every
// name asked for, so the real configuration code says what it reads.
type recorder struct {
	mu    sync.Mutex
	env   map[string]string
	asked map[string]bool
}

func (r *recorder) getenv(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked[name] = true
	return r.env[name]
}

// readByRoles runs the configuration loading of every role, as `prism
// <role>` does before it starts (infrastructure, the role's own settings,
// the log and the profiles), and of the simulator, over each environment
// given, and returns every variable name asked for. Some reads depend on
// values (a variable read only when another is set), hence several
// environments: none, and what compose gives each service.
func readByRoles(t *testing.T, envs []map[string]string) []string {
	t.Helper()
	rec := &recorder{asked: map[string]bool{}}
	for _, env := range envs {
		rec.env = env
		_ = system.CheckConfig(rec.getenv, system.Roles()) // bad values are another test's business
		obs.LogConfigFromEnv(config.New(rec.getenv))
		if _, finish, err := system.ProfileRole(context.Background(), rec.getenv); err == nil {
			_ = finish()
		}
		_, _ = bedrocksim.ConfigFromEnv(rec.getenv)
	}
	names := make([]string, 0, len(rec.asked))
	for n := range rec.asked {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func TestEveryVariableTheRolesReadIsDocumented(t *testing.T) {
	_, p := composeProject(t)
	envs := []map[string]string{{}}
	for _, s := range p.Services {
		envs = append(envs, envMap(s))
	}
	read := readByRoles(t, envs)
	if len(read) < 50 || !slices.Contains(read, "NATS_URL") || !slices.Contains(read, "EXTRACTOR_TIMEOUT") {
		t.Fatalf("the recording saw only %d variables (%v): it no longer sees the roles' configuration", len(read), read)
	}
	documented, _ := envExample(t, repoRoot(t))
	for _, name := range read {
		if !documented[name] {
			t.Errorf("%s is read by the roles but not documented in .env.example", name)
		}
	}
	t.Logf("%d variables read by the roles and the simulator", len(read))
}
