package bench

import (
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"slices"
	"testing"
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
	env := o.roleProfileEnv(map[string]string{"NATS_URL": "nats://x"}, "extractor")
	if env["PRISM_CPUPROFILE"] != "cpu.prof.extractor" || env["PRISM_MEMPROFILE"] != "mem.prof.extractor" || env["NATS_URL"] != "nats://x" {
		t.Errorf("role env = %v", env)
	}
	if got := len(o.profiles()); got != 2*(1+len(system.RoleNames()))+1 {
		t.Errorf("%d profiles listed, want the bench process's, every role's and the workers'", got)
	}
	o.InProcess = true
	if got := len(o.profiles()); got != 2 {
		t.Errorf("in process: %d profiles listed, want 2", got)
	}
}
