package deploycheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml with the official loader, which
// validates it against the compose schema and fills in ${VAR}s, from env
// as docker compose would from .env, with every profile on.
func loadCompose(t *testing.T, root string, env map[string]string) (*types.Project, error) {
	t.Helper()
	path := filepath.Join(root, "docker-compose.yml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: raw}},
		Environment: env,
	}, loader.WithProfiles([]string{"*"}), func(o *loader.Options) { o.SetProjectName("ai-prism", true) })
}

// composeProject is docker-compose.yml as `cp .env.example .env && docker
// compose up` sees it.
func composeProject(t *testing.T) (string, *types.Project) {
	t.Helper()
	root := repoRoot(t)
	_, set := envExample(t, root)
	p, err := loadCompose(t, root, set)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load with .env.example's values: %v", err)
	}
	return root, p
}

// oneShot says whether a service runs to completion (setup, migrate,
// bucket) rather than serving.
func oneShot(s types.ServiceConfig) bool { return s.Restart == "no" }

func TestComposeImagesPinned(t *testing.T) {
	_, p := composeProject(t)
	for name, s := range p.Services {
		if err := pinned(s.Image); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
}

// pinned accepts an image named with a version tag or a digest, never
// latest or no tag (which is latest).
func pinned(image string) error {
	if image == "" {
		return fmt.Errorf("no image")
	}
	if strings.Contains(image, "@sha256:") {
		return nil
	}
	name, tag := image, ""
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		name, tag = image[:i], image[i+1:]
	}
	switch {
	case tag == "":
		return fmt.Errorf("image %s has no tag (that is latest): pin a version", name)
	case tag == "latest" || strings.HasPrefix(tag, "latest-"):
		return fmt.Errorf("image %s is %s: pin a version", name, tag)
	case !versionTag.MatchString(tag):
		return fmt.Errorf("image %s's tag %q names no version", name, tag)
	}
	return nil
}

// versionTag is a tag beginning with a version number (2.15.2-alpine,
// 15.18-bookworm, 4.44) or the project's own dev build.
var versionTag = regexp.MustCompile(`^(v?\d+(\.\d+)*([-.+_][A-Za-z0-9.]+)*|dev)$`)

// composeVar is a ${VAR...} reference; $$ escapes a dollar for the shell.
var composeVar = regexp.MustCompile(`(?:^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?[^}]*\}`)

func TestComposeVariablesDefaultedOrDocumented(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	documented, set := envExample(t, root)
	if bare := regexp.MustCompile(`(?:^|[^$])\$[A-Za-z_]`).FindAll(raw, -1); len(bare) > 0 {
		t.Errorf("docker-compose.yml uses $VAR without braces (%q): write ${VAR:-default} or ${VAR:?why}", bare)
	}
	for _, m := range composeVar.FindAllSubmatch(raw, -1) {
		name, op := string(m[1]), string(m[2])
		switch {
		case strings.HasSuffix(op, "?") && set[name] == "":
			t.Errorf("${%s} is required by docker-compose.yml but .env.example does not set it", name)
		case op == "" && !documented[name]:
			t.Errorf("${%s} has no default in docker-compose.yml and .env.example does not document it", name)
		}
	}
	// And the loader agrees: with nothing set, the required ones stop it.
	if _, err := loadCompose(t, root, map[string]string{}); err == nil || !strings.Contains(err.Error(), "set it in .env") {
		t.Errorf("docker-compose.yml loads with no .env (err %v): its secrets must be required", err)
	}
}

func TestComposeHealthchecksAndDependencies(t *testing.T) {
	_, p := composeProject(t)
	for name, s := range p.Services {
		hc := s.HealthCheck
		if !oneShot(s) && (hc == nil || hc.Disable || len(hc.Test) == 0) {
			t.Errorf("long-running service %s has no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("service %s depends on unknown service %s", name, dep)
				continue
			}
			want := types.ServiceConditionHealthy
			if oneShot(target) {
				want = types.ServiceConditionCompletedSuccessfully
			}
			if d.Condition != want {
				t.Errorf("service %s depends on %s with condition %q, want %q", name, dep, d.Condition, want)
			}
		}
	}
}

func TestComposeNATSCluster(t *testing.T) {
	root, p := composeProject(t)
	mustExist(t, root, "deploy/nats/nats.conf", "the NATS cluster node configuration, mounted into each nats service")
	mustExist(t, root, "deploy/nats/auth.conf", "the NATS users and permissions, mounted into each nats service")
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("no service %s: the cluster has three nodes", name)
			continue
		}
		if got := strings.Join(s.Command, " "); got != "nats-server -c /etc/nats/nats.conf" {
			t.Errorf("%s runs %q, want nats-server -c /etc/nats/nats.conf", name, got)
		}
		if v := s.Environment["NATS_SERVER_NAME"]; v == nil || *v != name {
			t.Errorf("%s: NATS_SERVER_NAME is not %s", name, name)
		}
		mounts := map[string]string{}
		for _, v := range s.Volumes {
			mounts[v.Target] = v.Source
			if strings.HasPrefix(v.Target, "/etc/nats/") && !v.ReadOnly {
				t.Errorf("%s mounts %s writable", name, v.Target)
			}
		}
		for _, f := range []string{"nats.conf", "auth.conf"} {
			want := filepath.Join(root, "deploy", "nats", f)
			if mounts["/etc/nats/"+f] != want {
				t.Errorf("%s mounts %q at /etc/nats/%s, want %s", name, mounts["/etc/nats/"+f], f, want)
			}
		}
		if !strings.Contains(strings.Join(s.HealthCheck.Test, " "), ":8222/healthz") {
			t.Errorf("%s's healthcheck %q does not ask the monitoring port's /healthz", name, s.HealthCheck.Test)
		}
	}
}

func TestComposeRoles(t *testing.T) {
	_, p := composeProject(t)
	for _, name := range []string{"setup", "migrate"} {
		if s, ok := p.Services[name]; !ok || !oneShot(s) || env(s, "NATS_USER") != "admin" {
			t.Errorf("service %s must exist, run once (restart: \"no\") and connect to NATS as admin", name)
		}
	}
	for _, r := range system.Roles() {
		s, ok := p.Services[r.Name]
		if !ok {
			t.Errorf("role %s has no service", r.Name)
			continue
		}
		if !slices.Equal(s.Command, []string{r.Name}) {
			t.Errorf("service %s runs %q, want prism %s", r.Name, s.Command, r.Name)
		}
		if env(s, "NATS_USER") != r.Name {
			t.Errorf("service %s connects to NATS as %q, want its own user %s", r.Name, env(s, "NATS_USER"), r.Name)
		}
		if env(s, "NATS_PASSWORD") == "" || env(s, "NATS_REPLICAS") != "3" {
			t.Errorf("service %s: NATS_PASSWORD empty or NATS_REPLICAS not 3", r.Name)
		}
		// Scaling (--scale extractor=2) needs neither a fixed name nor a
		// fixed host port; the api alone publishes one.
		if s.ContainerName != "" {
			t.Errorf("service %s has container_name %s: it could not be scaled", r.Name, s.ContainerName)
		}
		if len(s.Ports) > 0 && r.Name != system.RoleAPI {
			t.Errorf("service %s publishes host ports %v: it could not be scaled", r.Name, s.Ports)
		}
		for _, dep := range []string{"setup", "migrate"} {
			if _, ok := s.DependsOn[dep]; !ok {
				t.Errorf("service %s does not wait for %s", r.Name, dep)
			}
		}
		if _, ok := s.DependsOn["bucket"]; r.Needs.S3 && !ok {
			t.Errorf("service %s uses S3 but does not wait for the bucket", r.Name)
		}
		grace, err := time.ParseDuration(env(s, "SHUTDOWN_GRACE"))
		if err != nil || s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= grace {
			t.Errorf("service %s: stop_grace_period %v must exceed SHUTDOWN_GRACE %q", r.Name, s.StopGracePeriod, env(s, "SHUTDOWN_GRACE"))
		}
		// The environment compose gives the role passes the role's own
		// configuration check, as `prism <role>` runs it before starting.
		if err := system.CheckConfig(config.MapEnv(envMap(s)), []system.Role{r}); err != nil {
			t.Errorf("service %s's environment fails the role's configuration: %v", r.Name, err)
		}
	}
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

func envMap(s types.ServiceConfig) map[string]string {
	m := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			m[k] = *v
		}
	}
	return m
}
