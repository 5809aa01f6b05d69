package system_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/shutdown"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/rs/zerolog"
)

// probe is a role that records whether it runs.
type probe struct {
	started, stopped chan struct{}
	err              error // returned at once when set
}

func newProbe() *probe { return &probe{started: make(chan struct{}), stopped: make(chan struct{})} }

func (p *probe) Run(ctx context.Context) error {
	close(p.started)
	defer close(p.stopped)
	if p.err != nil {
		return p.err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (p *probe) role(name string) system.Role {
	return system.Role{Name: name, Configure: func(*config.Loader) system.Build {
		return func(*system.Infra, zerolog.Logger) (system.Runner, error) { return p, nil }
	}}
}

func apiRole(t *testing.T) system.Role {
	t.Helper()
	roles, err := system.LookupRoles([]string{system.RoleAPI})
	if err != nil {
		t.Fatal(err)
	}
	return roles[0]
}

// TestAFailedStartStopsWhatStarted: the api cannot listen (its port is
// taken), so StartRoles fails, and the role started before it has stopped
// by the time it returns instead of running on unseen.
func TestAFailedStartStopsWhatStarted(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	first := newProbe()
	env := config.MapEnv(map[string]string{"API_ADDR": busy.Addr().String()})
	in := &system.Infra{Log: zerolog.Nop()}
	_, err = system.StartRoles(t.Context(), in, env, []system.Role{first.role("first"), apiRole(t)})
	if err == nil || !strings.Contains(err.Error(), "API_ADDR") {
		t.Fatalf("StartRoles = %v, want the api's listen error naming API_ADDR", err)
	}
	select {
	case <-first.stopped:
	default:
		t.Fatal("StartRoles returned its error while the role started before the api still runs")
	}
}

// TestARoleThatFailsStopsTheOthers: one role's error ends every role of
// the process, and Wait returns that error.
func TestARoleThatFailsStopsTheOthers(t *testing.T) {
	steady, failing := newProbe(), newProbe()
	failing.err = errors.New("lost its connection")
	in := &system.Infra{Log: zerolog.Nop()}
	running, err := system.StartRoles(t.Context(), in, config.MapEnv(nil), []system.Role{steady.role("steady"), failing.role("failing")})
	if err != nil {
		t.Fatal(err)
	}
	if err := running.Wait(); err == nil || !strings.Contains(err.Error(), "lost its connection") {
		t.Fatalf("Wait = %v, want the failing role's error", err)
	}
	select {
	case <-steady.stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the other role still runs after one failed")
	}
}

// stuck is a role that ignores its context's end for hold, and records
// the drain time its context carried.
type stuck struct {
	hold  time.Duration
	drain chan time.Duration
}

func (s *stuck) Run(ctx context.Context) error {
	<-ctx.Done()
	s.drain <- shutdown.Drain(ctx, 0)
	time.Sleep(s.hold)
	return nil
}

// TestARoleExceedingTheGraceIsCutOff: once the process is told to stop,
// Wait returns within SHUTDOWN_GRACE even though a role is still running,
// with ErrGraceExceeded; each role's context carries its share of the
// grace for finishing work in hand.
func TestARoleExceedingTheGraceIsCutOff(t *testing.T) {
	s := &stuck{hold: time.Minute, drain: make(chan time.Duration, 1)}
	role := system.Role{Name: "stuck", Configure: func(*config.Loader) system.Build {
		return func(*system.Infra, zerolog.Logger) (system.Runner, error) { return s, nil }
	}}
	ctx, stop := context.WithCancel(t.Context())
	running, err := system.StartRoles(ctx, &system.Infra{Log: zerolog.Nop()}, config.MapEnv(map[string]string{"SHUTDOWN_GRACE": "500ms"}), []system.Role{role})
	if err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	stop()
	err = running.Wait()
	took := time.Since(stopped)
	if !errors.Is(err, system.ErrGraceExceeded) {
		t.Fatalf("Wait = %v, want ErrGraceExceeded", err)
	}
	if took < 500*time.Millisecond || took > 1500*time.Millisecond {
		t.Fatalf("Wait returned %s after the stop, want about the 500ms grace", took)
	}
	if d := <-s.drain; d != shutdown.DrainOf(500*time.Millisecond) || d >= 500*time.Millisecond {
		t.Fatalf("the role's drain time is %s, want %s, within the grace", d, shutdown.DrainOf(500*time.Millisecond))
	}
}

// TestTheRoleTableIsTheOnlyList: every role of the table is a command,
// is in the usage text and in `prism dev`, and an unknown name is refused
// naming the roles there are.
func TestTheRoleTableIsTheOnlyList(t *testing.T) {
	dev, err := system.DevConfigFromEnv(config.MapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dev.Roles, ",") != strings.Join(system.RoleNames(), ",") {
		t.Errorf("prism dev runs %v, the table has %v", dev.Roles, system.RoleNames())
	}
	for _, r := range system.Roles() {
		if r.Usage == "" || r.Configure == nil || !r.Needs.NATS {
			t.Errorf("role %q is registered incompletely: %+v", r.Name, r)
		}
	}
	if _, err := system.LookupRoles([]string{"persist", "chat"}); err == nil || !strings.Contains(err.Error(), "persist, ingest") {
		t.Errorf("LookupRoles(chat) = %v, want an error listing the roles", err)
	}
	if _, err := system.DevConfigFromEnv(config.MapEnv(map[string]string{"PRISM_DEV_ROLES": "api,bogus"})); err == nil || !strings.Contains(err.Error(), "PRISM_DEV_ROLES") {
		t.Errorf("PRISM_DEV_ROLES=api,bogus: %v, want the variable named", err)
	}
}

// TestDevUsesTheConfiguredBedrockEndpoint: with AWS credentials and
// BEDROCK_ENDPOINT_URL (a VPC endpoint, a proxy), prism dev starts no
// simulator of its own and its analyzer calls that endpoint as given.
func TestDevUsesTheConfiguredBedrockEndpoint(t *testing.T) {
	sim, err := bedrocksim.New(bedrocksim.Config{AccessKey: "AKIDELSEWHERE", SecretKey: "elsewhere-secret", Seed: 1}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	defer hs.Close()
	dev := startDev(t, t.TempDir(), testenv.Postgres(t), map[string]string{
		"BEDROCK_ENDPOINT_URL":  hs.URL,
		"AWS_REGION":            "eu-west-1",
		"AWS_ACCESS_KEY_ID":     "AKIDELSEWHERE",
		"AWS_SECRET_ACCESS_KEY": "elsewhere-secret",
	})
	if dev.Sim != nil {
		t.Fatal("prism dev started its own simulator although BEDROCK_ENDPOINT_URL is set")
	}
	if !strings.Contains(dev.BedrockAt, hs.URL) {
		t.Errorf("banner says %q, want the endpoint %s", dev.BedrockAt, hs.URL)
	}
	id := upload(t, dev.APIURL, "contract.txt", contract)
	waitStored(t, dev.APIURL, id)
	var calls int64
	for _, m := range sim.Stats().Models {
		calls += m.Requests
	}
	if calls == 0 {
		t.Fatal("the document was analyzed, but not by the configured endpoint")
	}
}
