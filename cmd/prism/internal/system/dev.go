package system

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/natsembed"
	"github.com/aiprism/prism/platform/pglocal"
	"github.com/aiprism/prism/platform/s3local"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// DevConfig configures `prism dev`.
type DevConfig struct {
	VarDir      string // PRISM_VAR_DIR: where NATS, S3 and PostgreSQL keep their data
	NATSPort    int    // PRISM_DEV_NATS_PORT: -1 = in-process only
	S3Addr      string // PRISM_DEV_S3_ADDR
	PGPort      int    // PRISM_DEV_PG_PORT: 0 = pick a free port
	DatabaseURL string // DATABASE_URL: use this PostgreSQL instead of a local one
	Bucket      string
	// BedrockEndpoint is BEDROCK_ENDPOINT_URL: a Bedrock reached through
	// a VPC endpoint, a proxy or a simulator elsewhere, used as given.
	BedrockEndpoint string
	// UseAWSBedrock: a region and AWS credentials are configured, so the
	// analyzer talks to AWS Bedrock (at BedrockEndpoint when it is set).
	UseAWSBedrock bool
	SimSpeed      float64 // BEDROCKSIM_SPEED for the embedded simulator
	PGFsync       bool    // off only in tests
	S3Memory      bool    // PRISM_DEV_S3_MEMORY: objects in memory (benchmarks)
	// Roles run in this process (PRISM_DEV_ROLES, comma-separated; "none"
	// starts only the infrastructure, for roles run as separate processes).
	Roles []string
}

// DevConfigFromEnv reads the dev configuration.
func DevConfigFromEnv(env config.Getenv) (DevConfig, error) {
	l := config.New(env)
	c := DevConfig{
		VarDir:      l.String("PRISM_VAR_DIR", "./var"),
		NATSPort:    l.Int("PRISM_DEV_NATS_PORT", 4222, -1, 65535),
		S3Addr:      l.String("PRISM_DEV_S3_ADDR", "127.0.0.1:9000"),
		PGPort:      l.Int("PRISM_DEV_PG_PORT", 0, 0, 65535),
		DatabaseURL: l.String("DATABASE_URL", ""),
		Bucket:      l.String("S3_BUCKET", "prism"),
		SimSpeed:    l.Float("BEDROCKSIM_SPEED", 0.05, 0, 100),
		PGFsync:     l.Bool("PRISM_DEV_PG_FSYNC", true),
		S3Memory:    l.Bool("PRISM_DEV_S3_MEMORY", false),
		Roles:       RoleNames(),
		// Read here too so that a bad URL is named before anything starts.
		BedrockEndpoint: l.URL("BEDROCK_ENDPOINT_URL", "", "http", "https"),
	}
	if v := l.String("PRISM_DEV_ROLES", ""); v == "none" {
		c.Roles = nil
	} else if v != "" {
		c.Roles = strings.Split(v, ",")
		_, err := LookupRoles(c.Roles)
		l.Check(err == nil, "PRISM_DEV_ROLES", fmt.Sprintf("none, or roles among %s", strings.Join(RoleNames(), ",")))
	}
	c.UseAWSBedrock = env("AWS_REGION") != "" && hasAWSCredentials(env)
	return c, l.Err()
}

// hasAWSCredentials reports whether the SDK's default chain has
// credentials to find: keys, a profile, or a web identity or container
// role (EKS, ECS).
func hasAWSCredentials(env config.Getenv) bool {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		if env(k) != "" {
			return true
		}
	}
	return false
}

// Dev is a running development system.
type Dev struct {
	APIURL    string
	NATSURL   string
	S3URL     string
	PGDSN     string
	BedrockAt string
	Started   []string // what was started, for the banner
	// Sim is the embedded Bedrock simulator, nil when AWS is used.
	Sim *bedrocksim.Server
	// Infra is the process's connections, for tests and benchmarks.
	Infra *Infra
	// Account is the local account to sign in with when the API runs
	// with API_AUTH=token; empty in dev auth.
	Account DevAccount
	// RoleEnv is what the roles were configured with on top of the
	// process environment: the addresses and credentials of the embedded
	// services. Roles started as separate processes get it too.
	RoleEnv map[string]string

	running  *Running
	shutdown []func()
}

// Wait blocks until the roles stop.
func (d *Dev) Wait() error { return d.running.Wait() }

// Close stops the embedded servers, in reverse start order. Call it after
// the context given to StartDev has ended and Wait has returned.
func (d *Dev) Close() {
	for i := len(d.shutdown) - 1; i >= 0; i-- {
		d.shutdown[i]()
	}
}

// StartDev starts the whole system in this process: embedded NATS with
// fsync on every write, a local S3-compatible store, a local PostgreSQL
// (unless DATABASE_URL is set), the Bedrock simulator (unless AWS is
// configured), the migrations and JetStream assets (as `prism migrate`
// and `prism setup`), and every role. The roles run until ctx ends.
func StartDev(ctx context.Context, env config.Getenv, reg *prometheus.Registry, log zerolog.Logger) (d *Dev, err error) {
	cfg, err := DevConfigFromEnv(env)
	if err != nil {
		return nil, err
	}
	dev := &Dev{}
	defer func() {
		if err != nil {
			dev.Close() // d itself is nil on error returns
		}
	}()
	d = dev
	// Searchable by others (not listable): when run as root, PostgreSQL
	// runs as the postgres user and must reach its directory inside.
	if err := os.MkdirAll(cfg.VarDir, 0o711); err != nil {
		return nil, fmt.Errorf("create %s (PRISM_VAR_DIR): %w", cfg.VarDir, err)
	}
	if fi, err := os.Stat(cfg.VarDir); err == nil && os.Geteuid() == 0 && fi.Mode().Perm()&0o001 == 0 {
		_ = os.Chmod(cfg.VarDir, fi.Mode().Perm()|0o001)
	}
	over := map[string]string{}

	ns, err := natsembed.Start(ctx, natsembed.Options{Dir: filepath.Join(cfg.VarDir, "nats"), Port: cfg.NATSPort, ServerName: "prism-dev", SyncAlways: true})
	if err != nil {
		return nil, fmt.Errorf("start embedded NATS: %w", err)
	}
	d.shutdown = append(d.shutdown, ns.Shutdown)
	d.NATSURL = ns.ClientURL()
	d.Started = append(d.Started, "NATS JetStream   "+orInProcess(d.NATSURL)+"  (data in "+filepath.Join(cfg.VarDir, "nats")+", fsync always)")

	s3, err := s3local.Start(ctx, s3local.Options{Dir: filepath.Join(cfg.VarDir, "s3"), Addr: cfg.S3Addr, Buckets: []string{cfg.Bucket}, RequireSSE: true, Memory: cfg.S3Memory})
	if err != nil {
		return nil, fmt.Errorf("start local S3 on %s (PRISM_DEV_S3_ADDR): %w", cfg.S3Addr, err)
	}
	d.shutdown = append(d.shutdown, func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s3.Close(cctx)
	})
	d.S3URL = s3.URL()
	d.Started = append(d.Started, "S3 (local)       "+d.S3URL+"  (bucket "+cfg.Bucket+", data in "+filepath.Join(cfg.VarDir, "s3")+")")
	over["S3_ENDPOINT"] = d.S3URL
	over["S3_BUCKET"] = cfg.Bucket
	over["S3_USE_PATH_STYLE"] = "true"
	over["S3_ACCESS_KEY_ID"] = "prism-dev"
	over["S3_SECRET_ACCESS_KEY"] = "prism-dev-local-only"

	d.PGDSN = cfg.DatabaseURL
	if d.PGDSN == "" {
		pg, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(cfg.VarDir, "pg"), Port: cfg.PGPort, Log: log.Level(zerolog.WarnLevel), Fsync: cfg.PGFsync})
		if err != nil {
			return nil, fmt.Errorf("start local PostgreSQL (or set DATABASE_URL): %w", err)
		}
		d.shutdown = append(d.shutdown, func() {
			cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = pg.Stop(cctx)
		})
		d.PGDSN = pg.DSN()
		d.Started = append(d.Started, "PostgreSQL       "+config.Redact(d.PGDSN)+"  (data in "+filepath.Join(cfg.VarDir, "pg")+")")
	} else {
		d.Started = append(d.Started, "PostgreSQL       "+config.Redact(d.PGDSN)+"  (DATABASE_URL)")
	}
	over["DATABASE_URL"] = d.PGDSN

	// The simulator runs only when no Bedrock is configured, neither an
	// endpoint nor AWS credentials.
	switch {
	case cfg.BedrockEndpoint != "":
		d.BedrockAt = "Bedrock at " + config.Redact(cfg.BedrockEndpoint) + " (BEDROCK_ENDPOINT_URL)"
	case cfg.UseAWSBedrock:
		d.BedrockAt = "AWS Bedrock in " + env("AWS_REGION")
	default:
		simURL, sim, stop, err := startSimulator(env, cfg.SimSpeed, over, log)
		if err != nil {
			return nil, err
		}
		d.shutdown = append(d.shutdown, stop)
		d.Sim = sim
		d.BedrockAt = "Bedrock simulator " + simURL + " (not a language model: deterministic answers from a risk lexicon)"
	}
	d.Started = append(d.Started, d.BedrockAt)

	if env("API_AUTH") == "" {
		over["API_AUTH"] = "dev"
	}
	if env("API_ADDR") == "" {
		over["API_ADDR"] = "127.0.0.1:8080"
	}
	denv := config.Overlay(env, over)

	nc, err := ns.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect to embedded NATS: %w", err)
	}
	in := &Infra{Registry: reg, Log: log, Topology: NATSConfigFromEnv(config.New(denv)).Topology}
	bc, err := blob.ConfigFromEnv(denv)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := in.attach(ctx, nc, d.PGDSN, config.New(denv).Int("DB_MAX_CONNS", 24, 1, 1000), bc, Needs{NATS: true, Postgres: true, S3: true}); err != nil {
		in.Close()
		return nil, err
	}
	d.shutdown = append(d.shutdown, in.Close)
	d.Infra = in
	// The embedded server has no users: this process is its own admin and
	// makes the assets as `prism setup` does, before the roles bind them.
	if err := AssetsFromEnv(config.New(denv)).Apply(ctx, in.JS); err != nil {
		return nil, fmt.Errorf("set up JetStream: %w", err)
	}
	if err := in.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	d.RoleEnv = over
	roles, err := LookupRoles(cfg.Roles)
	if err != nil {
		return nil, err
	}
	if denv("API_AUTH") == api.AuthToken && slices.Contains(cfg.Roles, RoleAPI) {
		if d.Account, err = ensureDevAccount(ctx, in, cfg.VarDir); err != nil {
			return nil, err
		}
	}
	d.running, err = StartRoles(ctx, in, denv, roles)
	if err != nil {
		return nil, err
	}
	if d.running.APIAddr != "" {
		d.APIURL = "http://" + d.running.APIAddr
	}
	return d, nil
}

// startSimulator serves the Bedrock simulator on a loopback port and points
// the analyzer at it with credentials made up for this run.
func startSimulator(env config.Getenv, speed float64, over map[string]string, log zerolog.Logger) (string, *bedrocksim.Server, func(), error) {
	simCfg, err := bedrocksim.ConfigFromEnv(env)
	if err != nil {
		return "", nil, nil, err
	}
	if env("BEDROCKSIM_SPEED") == "" {
		simCfg.Speed = speed
	}
	secret := randomHex(20)
	simCfg.AccessKey, simCfg.SecretKey = "prism-dev", secret
	sim, err := bedrocksim.New(simCfg, log.With().Str("role", "bedrock-sim").Logger())
	if err != nil {
		return "", nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("bedrock simulator stopped")
		}
	}()
	simURL := "http://" + ln.Addr().String()
	over["BEDROCK_ENDPOINT_URL"] = simURL
	over["AWS_REGION"] = "us-east-1"
	over["AWS_ACCESS_KEY_ID"] = "prism-dev"
	over["AWS_SECRET_ACCESS_KEY"] = secret
	return simURL, sim, func() { _ = srv.Close() }, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func orInProcess(url string) string {
	if url == "" {
		return "(in-process only)"
	}
	return url
}

// DevAccount is the local account `prism dev` makes for API_AUTH=token.
type DevAccount struct {
	Email        string
	PasswordFile string // holds the password, readable by its owner only
}

// SignInCommand is a shell command that signs in at apiURL, keeping the
// session cookie in cookies.txt and printing the answer (with the CSRF
// token). The password is read from its file, never shown.
func (a DevAccount) SignInCommand(apiURL string) string {
	return `curl -sS -c cookies.txt -H 'Content-Type: application/json' -d "{\"email\":\"` + a.Email +
		`\",\"password\":\"$(cat '` + a.PasswordFile + `')\"}" ` + apiURL + `/api/v1/session`
}

// devEmail is the local account's email.
const devEmail = "dev@localhost"

// ensureDevAccount makes the local admin account dev@localhost with a
// random password, written to PRISM_VAR_DIR/dev-password (0600), so the
// real sign-in can be tried without set-up. A later start keeps both; if
// the file is gone, the password is replaced and written anew.
func ensureDevAccount(ctx context.Context, in *Infra, varDir string) (DevAccount, error) {
	acc := DevAccount{Email: devEmail, PasswordFile: filepath.Join(varDir, "dev-password")}
	users := accounts.NewUsers(in.Pool, accounts.DefaultParams())
	_, err := users.Get(ctx, devEmail)
	exists := err == nil
	if err != nil && !errors.Is(err, accounts.ErrUserNotFound) {
		return acc, fmt.Errorf("dev account: %w", err)
	}
	if _, ferr := os.Stat(acc.PasswordFile); exists && ferr == nil {
		return acc, nil
	}
	password := rand.Text()
	if err := os.WriteFile(acc.PasswordFile, []byte(password+"\n"), 0o600); err != nil {
		return acc, fmt.Errorf("dev account: write its password: %w", err)
	}
	if exists {
		_, err = users.SetPassword(ctx, devEmail, password)
	} else {
		_, err = users.Add(ctx, accounts.NewUser{Email: devEmail, DisplayName: "Local developer", Role: accounts.RoleAdmin, Password: password})
	}
	if err != nil {
		return acc, fmt.Errorf("dev account: %w", err)
	}
	return acc, nil
}
