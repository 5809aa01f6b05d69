package system

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/extractor"
	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/notifier"
	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/shutdown"
	"github.com/aiprism/prism/streams"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Role names, as subcommands of prism.
const (
	RoleIngest    = "ingest"
	RoleExtractor = "extractor"
	RoleAnalyzer  = "analyzer"
	RolePersist   = "persist"
	RoleNotifier  = "notifier"
	RoleAPI       = "api"
)

// A Role is one long-running role of the pipeline as the prism command
// knows it. Each is registered once, in Roles: the usage text, `prism
// <role>`, the configuration check, `prism dev` and the process harness
// all iterate that table, so a new role (chat, backup, ...) is one entry.
//
// Every role package has the same shape: a Config read by ConfigFromEnv,
// a constructor taking the Config and the connections it works with
// (Deps), and Run(ctx), which opens what the role owns, serves until ctx
// ends and releases it.
type Role struct {
	Name  string // the subcommand
	Usage string // one line for `prism help`
	Needs Needs  // the connections the process opens for it
	// ListenEnv names the variable of the address the role listens on,
	// if it listens: a harness that starts it as a process picks a free
	// port there.
	ListenEnv string
	// Configure reads the role's variables, recording problems on l so
	// that every bad variable is reported together. The Build it returns
	// makes the role on the process's connections.
	Configure func(l *config.Loader) Build
}

// Build makes a configured role. It starts nothing but what the role's
// Run owns (the api's listener, opened so that its address is known).
type Build func(in *Infra, log zerolog.Logger) (Runner, error)

// Runner is a built role.
type Runner interface {
	Run(ctx context.Context) error
}

// Roles returns the role table, in start order: persist first so that
// nothing is announced before it can be projected, the api last so that
// it serves only once the pipeline behind it runs.
func Roles() []Role {
	return []Role{
		define(RolePersist, "project events into PostgreSQL", Needs{NATS: true, Postgres: true},
			persist.ConfigFromEnv,
			func(c persist.Config, in *Infra, log zerolog.Logger) (Runner, error) {
				return persist.NewRole(c, persist.Deps{JS: in.JS, Pool: in.Pool, Registry: in.Registry, Log: log}), nil
			}),
		define(RoleIngest, "store documents published to NATS on prism.intake.<owner>", Needs{NATS: true, S3: true},
			ingest.ConfigFromEnv,
			func(c ingest.Config, in *Infra, log zerolog.Logger) (Runner, error) {
				return ingest.NewRole(c, ingest.Deps{JS: in.JS, Objects: in.Blobs, Registry: in.Registry, Log: log}), nil
			}),
		define(RoleExtractor, "turn stored documents into text", Needs{NATS: true, S3: true},
			extractorConfig,
			func(c extractor.Config, in *Infra, log zerolog.Logger) (Runner, error) {
				return extractor.NewRole(c, extractor.Deps{JS: in.JS, Objects: in.Blobs, Registry: in.Registry, Log: log}), nil
			}),
		define(RoleAnalyzer, "assess extracted text with Claude on Bedrock", Needs{NATS: true, S3: true},
			analyzer.ConfigFromEnv,
			func(c analyzer.Config, in *Infra, log zerolog.Logger) (Runner, error) {
				return analyzer.NewRole(c, analyzer.Deps{JS: in.JS, Objects: in.Blobs, Registry: in.Registry, Log: log}), nil
			}),
		define(RoleNotifier, "deliver webhooks for finished documents", Needs{NATS: true},
			notifier.ConfigFromEnv,
			func(c notifier.Config, in *Infra, log zerolog.Logger) (Runner, error) {
				return notifier.NewRole(c, notifier.Deps{JS: in.JS, Registry: in.Registry, Log: log}), nil
			}),
		{
			Name: RoleAPI, Usage: "HTTP API, server-sent events and health", ListenEnv: "API_ADDR",
			Needs: Needs{NATS: true, Postgres: true, S3: true},
			Configure: func(l *config.Loader) Build {
				c, ic := api.ConfigFromEnv(l), ingest.ConfigFromEnv(l)
				return func(in *Infra, log zerolog.Logger) (Runner, error) { return buildAPI(c, ic, in, log) }
			},
		},
	}
}

// define registers a role whose build needs only its typed configuration.
func define[C any](name, usage string, needs Needs, load func(*config.Loader) C, build func(C, *Infra, zerolog.Logger) (Runner, error)) Role {
	return Role{Name: name, Usage: usage, Needs: needs, Configure: func(l *config.Loader) Build {
		c := load(l)
		return func(in *Infra, log zerolog.Logger) (Runner, error) { return build(c, in, log) }
	}}
}

// extractorConfig is the extractor's configuration plus, when profiling
// is asked for, a profile directory for its workers.
func extractorConfig(l *config.Loader) extractor.Config {
	c := extractor.ConfigFromEnv(l)
	if path := l.String(EnvCPUProfile, ""); path != "" {
		err := profileWorkers(&c, path)
		l.Check(err == nil, EnvCPUProfile, fmt.Sprintf("a writable profile path (%v)", err))
	}
	return c
}

// buildAPI listens on API_ADDR before anything runs, so the address is
// known and a busy port stops the start, then binds the limits and, in
// token mode, the sessions and sign-in buckets.
func buildAPI(c api.Config, ic ingest.Config, in *Infra, log zerolog.Logger) (Runner, error) {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s (API_ADDR): %w", c.Addr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bucketsOpenTimeout)
	defer cancel()
	if in.JS == nil {
		_ = ln.Close()
		return nil, errors.New("api: sessions and limits need NATS")
	}
	limits, err := quota.Open(ctx, in.JS, quota.Config{})
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("api: %w", err)
	}
	var acc api.Accounts
	if c.Auth == api.AuthToken {
		acc, err = api.OpenAccounts(ctx, c, in.JS, in.Pool, api.AccountsOptions{})
		if err != nil {
			_ = ln.Close()
			return nil, fmt.Errorf("api: %w", err)
		}
	}
	return api.New(c, api.Deps{
		Accounts:  acc,
		Quota:     limits,
		NC:        in.NC,
		JS:        in.JS,
		Pool:      in.Pool,
		Documents: store.New(in.Pool),
		Blobs:     in.Blobs,
		Ingest:    ingest.NewService(in.Blobs, streams.NewPublisher(in.JS, api.Source), ic.MaxBytes),
		Registry:  in.Registry,
		Log:       log,
		Listener:  ln,
	}), nil
}

// bucketsOpenTimeout bounds binding the API's KV buckets at start.
const bucketsOpenTimeout = 30 * time.Second

// RoleNames lists the names of the roles, in start order.
func RoleNames() []string {
	var names []string
	for _, r := range Roles() {
		names = append(names, r.Name)
	}
	return names
}

// LookupRoles returns the roles named, in the order given.
func LookupRoles(names []string) ([]Role, error) {
	table := Roles()
	out := make([]Role, 0, len(names))
	for _, n := range names {
		found := false
		for _, r := range table {
			if r.Name == n {
				out, found = append(out, r), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown role %q (roles: %s)", n, strings.Join(RoleNames(), ", "))
		}
	}
	return out, nil
}

// NeedsOf returns what a set of roles needs together.
func NeedsOf(roles []Role) Needs {
	var n Needs
	for _, r := range roles {
		n.NATS = n.NATS || r.Needs.NATS
		n.Postgres = n.Postgres || r.Needs.Postgres
		n.S3 = n.S3 || r.Needs.S3
	}
	return n
}

// configured is a set of roles with their configuration read.
type configured struct {
	roles   []Role
	builds  []Build
	metrics string        // METRICS_ADDR
	grace   time.Duration // SHUTDOWN_GRACE
}

// configure reads the configuration of roles and the process's own
// variables, all before anything starts, so a bad value stops the process
// at once and every bad variable is named together.
func configure(env config.Getenv, roles []Role) (configured, error) {
	l := config.New(env)
	c := configured{roles: roles}
	for _, r := range roles {
		c.builds = append(c.builds, r.Configure(l))
	}
	c.metrics = l.String("METRICS_ADDR", "")
	c.grace = shutdown.GraceFromEnv(l)
	return c, l.Err()
}

// Running is a set of roles running in one process.
type Running struct {
	// APIAddr is where the api role listens, once it is listening.
	APIAddr string
	wait    func() error
}

// Wait blocks until every role has stopped and returns the first error.
// Once the roles are told to stop, it waits SHUTDOWN_GRACE at most, then
// returns ErrGraceExceeded with the laggards still running: the process
// exits before an orchestrator's SIGKILL, and what they held is redelivered.
func (r *Running) Wait() error { return r.wait() }

// ErrGraceExceeded: roles did not stop within SHUTDOWN_GRACE.
var ErrGraceExceeded = errors.New("roles still running at the end of SHUTDOWN_GRACE")

// StartRoles starts roles on in and returns at once; they run until ctx
// ends or one of them fails, which stops the others. Stopping, each role
// stops taking work and has SHUTDOWN_GRACE to finish or hand back what it
// holds (shutdown.Drain of its context tells it its share). The api role listens
// before StartRoles returns, so its address is known. If a role cannot be
// built, the roles already started are stopped, and have stopped, before
// StartRoles returns the error.
func StartRoles(ctx context.Context, in *Infra, env config.Getenv, roles []Role) (*Running, error) {
	c, err := configure(env, roles)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(shutdown.WithDrain(ctx, shutdown.DrainOf(c.grace)))
	eg, ctx := errgroup.WithContext(ctx)
	g := stopQuietly{eg, ctx}
	run := &Running{wait: func() error { defer cancel(); return waitWithin(ctx, c.grace, eg.Wait, in.Log) }}
	for i, r := range c.roles {
		runner, err := c.builds[i](in, in.Log.With().Str(obs.FieldRole, r.Name).Logger())
		if err != nil {
			cancel()
			_ = eg.Wait() // the roles started before it have stopped
			return nil, fmt.Errorf("start %s: %w", r.Name, err)
		}
		if a, ok := runner.(interface{ Addr() string }); ok && r.Name == RoleAPI {
			// Listening already, so the address is known before it serves.
			run.APIAddr = a.Addr()
		}
		g.Go(func() error { return runner.Run(ctx) })
	}
	if c.metrics != "" {
		g.Go(func() error { return obs.ServeMetrics(ctx, c.metrics, in.Registry, in.Log) })
	}
	return run, nil
}

// waitWithin returns what wait returns, waiting grace at most once
// stopping has ended.
func waitWithin(stopping context.Context, grace time.Duration, wait func() error, log zerolog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-stopping.Done():
	}
	start := time.Now()
	log.Info().Dur("grace", grace).Msg("stopping: finishing or handing back work in hand")
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-done:
		log.Info().Dur("took", time.Since(start)).Msg("stopped")
		return err
	case <-t.C:
		log.Error().Dur("grace", grace).Msg("roles did not stop within SHUTDOWN_GRACE; exiting without them")
		return fmt.Errorf("%w (%s)", ErrGraceExceeded, grace)
	}
}

// stopQuietly runs roles in an errgroup; a role that returns an error only
// because the process is stopping (even while it was still starting) has
// not failed.
type stopQuietly struct {
	eg  *errgroup.Group
	ctx context.Context
}

func (s stopQuietly) Go(f func() error) {
	s.eg.Go(func() error {
		err := f()
		if err != nil && s.ctx.Err() != nil {
			return nil
		}
		return err
	})
}
