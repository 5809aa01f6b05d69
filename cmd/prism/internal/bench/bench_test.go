package bench

import (
	"slices"
	"strings"
	"testing"

	"github.com/aiprism/prism/cmd/prism/internal/system"
)

func TestSSERuns(t *testing.T) {
	for _, c := range []struct {
		quick bool
		want  []int
	}{{quick: true, want: []int{20}}, {quick: false, want: []int{100, 1000}}} {
		if got := (Options{Quick: c.quick}).Defaults().sseRuns(); !slices.Equal(got, c.want) {
			t.Errorf("quick=%v: SSE runs of %v documents, want %v", c.quick, got, c.want)
		}
	}
}

func TestRoleProfiles(t *testing.T) {
	o := Options{CPUProfile: "cpu.prof", MemProfile: "mem.prof"}
	env := o.roleProfileEnv(map[string]string{"NATS_URL": "nats://x"}, partDocuments, "extractor")
	if env["PRISM_CPUPROFILE"] != "cpu.prof.extractor" || env["PRISM_MEMPROFILE"] != "mem.prof.extractor" || env["NATS_URL"] != "nats://x" {
		t.Errorf("role env = %v", env)
	}
	env = o.roleProfileEnv(map[string]string{}, partChat, "api")
	if env["PRISM_CPUPROFILE"] != "cpu.prof.chat.api" || env["PRISM_MEMPROFILE"] != "mem.prof.chat.api" {
		t.Errorf("role env of the chat system = %v", env)
	}
	roles := len(system.RoleNames())
	// The bench process's CPU; per system its heap, every role's two and
	// the workers' directory.
	for _, c := range []struct {
		scenario  string
		inProcess bool
		want      int
	}{
		{ScenarioAll, false, 1 + 2*(1+2*roles+1)},
		{ScenarioChat, false, 1 + (1 + 2*roles + 1)},
		{ScenarioAll, true, 1 + 2},
		{ScenarioChat, true, 1 + 1},
	} {
		o.Scenario, o.InProcess = c.scenario, c.inProcess
		parts, err := o.parts()
		if err != nil {
			t.Fatal(err)
		}
		ps := o.profiles(parts)
		if len(ps) != c.want {
			t.Errorf("%s, in process %v: %d profiles listed, want %d", c.scenario, c.inProcess, len(ps), c.want)
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if seen[p.Path] {
				t.Errorf("%s: %s listed twice: two systems would write one file", c.scenario, p.Path)
			}
			seen[p.Path] = true
		}
	}
}

func TestScenarios(t *testing.T) {
	if got := (Options{}).Defaults().Scenario; got != ScenarioAll {
		t.Errorf("default scenario %q, want %q", got, ScenarioAll)
	}
	if _, err := (Options{Scenario: "everything"}).parts(); err == nil || !strings.Contains(err.Error(), "all, chat") {
		t.Errorf("unknown scenario: %v, want an error naming the scenarios", err)
	}
	if p, _ := (Options{Scenario: ScenarioChat}).parts(); !slices.Equal(p, []string{partChat}) {
		t.Errorf("chat runs %v", p)
	}
}
