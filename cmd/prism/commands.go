package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/rs/zerolog"
)

// logger is a process's logger. It names the command the process runs;
// each role started in it adds its own role field (StartRoles), so a line
// never holds one field twice.
func logger(env config.Getenv, w io.Writer, process string) (zerolog.Logger, error) {
	l := config.New(env)
	lc := obs.LogConfigFromEnv(l)
	if err := l.Err(); err != nil {
		return zerolog.Nop(), err
	}
	return obs.NewLogger(w, lc).With().Str(obs.FieldProcess, process).Logger(), nil
}

// runRole runs one role alone against external NATS, PostgreSQL and S3.
func runRole(ctx context.Context, role system.Role, env config.Getenv, stderr io.Writer) (err error) {
	log, err := logger(env, stderr, role.Name)
	if err != nil {
		return err
	}
	roles := []system.Role{role}
	if err := system.CheckConfig(env, roles); err != nil {
		return err
	}
	ctx, finishProfiles, err := system.ProfileRole(ctx, env)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, finishProfiles()) }()
	reg := obs.NewRegistry()
	in, err := system.Open(ctx, env, system.NeedsOf(roles), reg, log, role.Name)
	if err != nil {
		return err
	}
	defer in.Close()
	running, err := system.StartRoles(ctx, in, env, roles)
	if err != nil {
		return err
	}
	return running.Wait()
}

// runMigrate applies the migrations, then creates the first admin named
// by PRISM_ADMIN_EMAIL if there is no user with that email.
func runMigrate(ctx context.Context, env config.Getenv, stderr io.Writer) error {
	log, err := logger(env, stderr, "migrate")
	if err != nil {
		return err
	}
	admin, err := adminFromEnv(env)
	if err != nil {
		return err
	}
	in, err := system.Open(ctx, env, system.Needs{Postgres: true}, obs.NewRegistry(), log, "migrate")
	if err != nil {
		return err
	}
	defer in.Close()
	if err := in.Migrate(ctx); err != nil {
		return err
	}
	log.Info().Msg("migrations applied")
	return admin.ensure(ctx, in.Pool, log)
}

func runSimulator(ctx context.Context, env config.Getenv, stderr io.Writer) error {
	log, err := logger(env, stderr, "bedrock-sim")
	if err != nil {
		return err
	}
	l := config.New(env)
	addr := l.String("BEDROCKSIM_ADDR", "127.0.0.1:8787")
	if err := l.Err(); err != nil {
		return err
	}
	cfg, err := bedrocksim.ConfigFromEnv(env)
	if err != nil {
		return err
	}
	sim, err := bedrocksim.New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (BEDROCKSIM_ADDR): %w", addr, err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", ln.Addr().String()).Msg("Bedrock simulator listening (a simulator, not a language model)")
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runDev runs the whole system in this process until ctx ends.
func runDev(ctx context.Context, env config.Getenv, stdout, stderr io.Writer) error {
	log, err := logger(config.Overlay(env, map[string]string{"LOG_FORMAT": orDefault(env("LOG_FORMAT"), "console")}), stderr, "dev")
	if err != nil {
		return err
	}
	reg := obs.NewRegistry()
	dev, err := system.StartDev(ctx, env, reg, log)
	if err != nil {
		return err
	}
	defer dev.Close()
	fmt.Fprintf(stdout, "\nAI-Prism is running: %s\n\n", dev.APIURL)
	fmt.Fprintf(stdout, "  started:\n    %s\n", strings.Join(dev.Started, "\n    "))
	if a := dev.Account; a.Email != "" {
		// API_AUTH=token: the real sign-in, with the account made for it.
		fmt.Fprintf(stdout, "\n  sign in as %s with the password in %s:\n", a.Email, a.PasswordFile)
		fmt.Fprintf(stdout, "    %s\n", a.SignInCommand(dev.APIURL))
		fmt.Fprintf(stdout, "    then send its csrf_token as X-CSRF-Token (and Origin: %s) with every change,\n", dev.APIURL)
		fmt.Fprintf(stdout, "    or make an API token with POST /api/v1/tokens and send it as Authorization: Bearer\n")
	} else {
		fmt.Fprintf(stdout, "\n  try:  curl -F file=@README.md %s/api/v1/documents\n", dev.APIURL)
	}
	fmt.Fprintf(stdout, "  metrics: %s/metrics   health: %s/readyz\n  Ctrl-C stops everything; data stays in ./var.\n\n", dev.APIURL, dev.APIURL)
	err = dev.Wait()
	log.Info().Msg("shutting down")
	return err
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
