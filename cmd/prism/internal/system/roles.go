package system

import (
	"context"
	"fmt"
	"net"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/extractor"
	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/notifier"
	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/streams"
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
	RoleMigrate   = "migrate"
)

// PipelineRoles are the long-running roles, in start order.
var PipelineRoles = []string{RolePersist, RoleIngest, RoleExtractor, RoleAnalyzer, RoleNotifier, RoleAPI}

// roleConfigs holds every role's configuration, all read and validated
// before anything starts, so a bad value stops the process at once.
type roleConfigs struct {
	extractor extractor.Config
	analyzer  analyzer.Config
	persist   persist.Config
	notifier  notifier.Config
	api       api.Config
	ingest    ingest.Config
	metrics   string
}

func loadRoleConfigs(env config.Getenv, roles []string) (roleConfigs, error) {
	l := config.New(env)
	var c roleConfigs
	for _, r := range roles {
		switch r {
		case RoleExtractor:
			c.extractor = extractor.ConfigFromEnv(l)
			if path := env(EnvCPUProfile); path != "" {
				if err := profileWorkers(&c.extractor, path); err != nil {
					return c, err
				}
			}
		case RoleAnalyzer:
			c.analyzer = analyzer.ConfigFromEnv(l)
		case RolePersist:
			c.persist = persist.ConfigFromEnv(l)
		case RoleNotifier:
			c.notifier = notifier.ConfigFromEnv(l)
		case RoleAPI:
			c.api = api.ConfigFromEnv(l)
			c.ingest = ingest.ConfigFromEnv(l)
		case RoleIngest:
			c.ingest = ingest.ConfigFromEnv(l)
		default:
			return c, fmt.Errorf("unknown role %q", r)
		}
	}
	c.metrics = l.String("METRICS_ADDR", "")
	return c, l.Err()
}

// Running is a set of roles running in one process.
type Running struct {
	// APIAddr is where the api role listens, once it is listening.
	APIAddr string
	wait    func() error
}

// Wait blocks until every role has stopped and returns the first error.
func (r *Running) Wait() error { return r.wait() }

// StartRoles starts roles on in and returns at once; they run until ctx
// ends. The api role listens before StartRoles returns, so its address is
// known.
func StartRoles(ctx context.Context, in *Infra, env config.Getenv, roles []string) (*Running, error) {
	cfg, err := loadRoleConfigs(env, roles)
	if err != nil {
		return nil, err
	}
	eg, ctx := errgroup.WithContext(ctx)
	g := stopQuietly{eg, ctx}
	run := &Running{wait: eg.Wait}
	log := in.Log
	for _, role := range roles {
		rlog := log.With().Str(obs.FieldRole, role).Logger()
		switch role {
		case RoleExtractor:
			g.Go(func() error { return extractor.Run(ctx, cfg.extractor, in.JS, in.Blobs, in.Registry, rlog) })
		case RoleAnalyzer:
			g.Go(func() error { return analyzer.Run(ctx, cfg.analyzer, in.JS, in.Blobs, in.Registry, rlog) })
		case RolePersist:
			g.Go(func() error {
				return persist.New(in.Pool, rlog).Run(ctx, in.JS,
					persist.WithConcurrency(cfg.persist.Concurrency), persist.WithMetrics(streams.NewRunnerMetrics(in.Registry)))
			})
		case RoleNotifier:
			g.Go(func() error { return notifier.Run(ctx, cfg.notifier, in.JS, in.Registry, rlog) })
		case RoleIngest:
			g.Go(func() error { return ingest.RunIntake(ctx, cfg.ingest, in.JS, in.Blobs, in.Registry, rlog) })
		case RoleAPI:
			ln, err := net.Listen("tcp", cfg.api.Addr)
			if err != nil {
				return nil, fmt.Errorf("api: listen on %s (API_ADDR): %w", cfg.api.Addr, err)
			}
			run.APIAddr = ln.Addr().String()
			srv := api.New(cfg.api, api.Deps{
				NC:        in.NC,
				JS:        in.JS,
				Pool:      in.Pool,
				Documents: store.New(in.Pool),
				Blobs:     in.Blobs,
				Ingest:    ingest.NewService(in.Blobs, streams.NewPublisher(in.JS, "/prism/api"), cfg.ingest.MaxBytes),
				Registry:  in.Registry,
				Log:       rlog,
			})
			g.Go(func() error { return srv.Serve(ctx, ln) })
		}
	}
	if cfg.metrics != "" {
		g.Go(func() error { return obs.ServeMetrics(ctx, cfg.metrics, in.Registry, log) })
	}
	return run, nil
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
