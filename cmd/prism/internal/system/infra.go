// Package system assembles the roles into processes: it opens the
// connections a role needs from the environment (Infra), runs any set of
// roles in one process (StartRoles, from the role table in roles.go), and
// starts the embedded development system of `prism dev` (StartDev).
package system

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/aiprism/prism/persist/migrations"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Infra holds the connections roles share in one process.
type Infra struct {
	NC       *nats.Conn          // nil when the process needs no NATS
	JS       jetstream.JetStream // nil when the process needs no NATS
	Pool     *pgxpool.Pool       // nil for roles that need no database
	Blobs    *blob.Store         // nil for roles that need no object store
	Registry *prometheus.Registry
	Log      zerolog.Logger
	Topology streams.Topology
}

// Close closes what Open opened.
func (in *Infra) Close() {
	if in.Pool != nil {
		in.Pool.Close()
	}
	if in.NC != nil {
		_ = in.NC.Drain()
	}
}

// Needs says which connections a set of roles requires.
type Needs struct{ NATS, Postgres, S3 bool }

// NATSConfig says how to reach NATS and as whom.
type NATSConfig struct {
	URL       string // one server or a comma-separated list of a cluster's
	CredsFile string // a JWT credentials file (decentralized auth)
	User      string
	Password  string
	TLS       TLSFiles
	Topology  streams.Topology
}

// TLSFiles are PEM files for TLS to NATS: CA verifies the servers (a
// tls:// URL or a server that requires TLS); Cert and Key are the client
// certificate, for servers that verify clients.
type TLSFiles struct{ CA, Cert, Key string }

// NATSConfigFromEnv reads NATS_URL, NATS_CREDS, NATS_USER, NATS_PASSWORD,
// NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY and the topology
// (NATS_REPLICAS, NATS_DOCS_MAX_BYTES).
func NATSConfigFromEnv(l *config.Loader) NATSConfig {
	t := streams.DefaultTopology()
	t.Replicas = l.Int("NATS_REPLICAS", 1, 1, 5)
	t.MaxBytes = l.Int64("NATS_DOCS_MAX_BYTES", t.MaxBytes, -1, 1<<50)
	c := NATSConfig{
		URL:       l.String("NATS_URL", "nats://127.0.0.1:4222"),
		CredsFile: l.String("NATS_CREDS", ""),
		User:      l.String("NATS_USER", ""),
		Password:  l.String("NATS_PASSWORD", ""),
		TLS:       TLSFiles{CA: l.String("NATS_TLS_CA", ""), Cert: l.String("NATS_TLS_CERT", ""), Key: l.String("NATS_TLS_KEY", "")},
		Topology:  t,
	}
	l.Check(c.User == "" || c.CredsFile == "", "NATS_USER", "unset when NATS_CREDS is set (one way to sign in)")
	l.Check(c.Password == "" || c.User != "", "NATS_USER", "set with NATS_PASSWORD")
	l.Check((c.TLS.Cert == "") == (c.TLS.Key == ""), "NATS_TLS_CERT", "set together with NATS_TLS_KEY")
	return c
}

// InboxPrefix is the prefix of the reply subjects of a process running
// roles: _INBOX_<role> for one role, which the server's permissions
// (deploy/nats/auth.conf) let only that role's user read, so no role sees
// another's replies; _INBOX_prism for a process of several roles.
func InboxPrefix(roles []string) string {
	if len(roles) == 1 {
		return "_INBOX_" + roles[0]
	}
	return "_INBOX_prism"
}

// Options are the client options of c, for a connection named name whose
// replies arrive under inbox.
func (c NATSConfig) Options(name, inbox string) []nats.Option {
	opts := []nats.Option{nats.Name("prism " + name), nats.MaxReconnects(-1), nats.CustomInboxPrefix(inbox)}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLS.CA != "" {
		opts = append(opts, nats.RootCAs(c.TLS.CA))
	}
	if c.TLS.Cert != "" {
		opts = append(opts, nats.ClientCert(c.TLS.Cert, c.TLS.Key))
	}
	return opts
}

// Connect connects as c says.
func (c NATSConfig) Connect(name, inbox string) (*nats.Conn, error) {
	conn, err := nats.Connect(c.URL, c.Options(name, inbox)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s as %q: %w%s", config.Redact(c.URL), c.User, err, c.tlsHint(err))
	}
	return conn, nil
}

// tlsHint says which variable a TLS refusal points to: the server's
// certificate not trusted (NATS_TLS_CA), or a server that verifies
// clients refusing one without a certificate.
func (c NATSConfig) tlsHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown) || errors.As(err, &verify):
		if c.TLS.CA == "" {
			return " (set NATS_TLS_CA to the PEM file of the CA that signed the server's certificate)"
		}
		return fmt.Sprintf(" (NATS_TLS_CA=%s did not sign the server's certificate)", c.TLS.CA)
	case c.TLS.Cert == "" && strings.Contains(err.Error(), "tls"): // "certificate required", or the connection cut after the handshake
		return " (if the server verifies clients, set NATS_TLS_CERT and NATS_TLS_KEY to a client certificate and key)"
	}
	return ""
}

// infraConfig is where the shared services are.
type infraConfig struct {
	nats     NATSConfig
	blob     blob.Config
	dsn      string
	maxConns int
}

func loadInfraConfig(env config.Getenv, needs Needs) (infraConfig, error) {
	l := config.New(env)
	c := infraConfig{nats: NATSConfigFromEnv(l)}
	var errs []error
	if needs.S3 {
		var err error
		if c.blob, err = blob.ConfigFromEnv(env); err != nil {
			errs = append(errs, err)
		}
	}
	if needs.Postgres {
		c.dsn = l.Required("DATABASE_URL", "a PostgreSQL URL, e.g. postgres://user:pass@host:5432/prism")
		c.maxConns = l.Int("DB_MAX_CONNS", 24, 1, 1000)
	}
	return c, errors.Join(append([]error{l.Err()}, errs...)...)
}

// CheckConfig validates everything roles will read from env, infrastructure
// and roles alike, without connecting to anything: a process with a bad
// value stops at once and names every bad variable together.
func CheckConfig(env config.Getenv, roles []Role) error {
	_, ierr := loadInfraConfig(env, NeedsOf(roles))
	_, rerr := configure(env, roles)
	return errors.Join(ierr, rerr)
}

// Open connects to what needs asks for, configured from env, for the
// roles named (or a command: migrate, setup), whose reply subjects
// start with InboxPrefix(names). It creates nothing on NATS: roles bind
// to what `prism setup` made.
func Open(ctx context.Context, env config.Getenv, needs Needs, reg *prometheus.Registry, log zerolog.Logger, names ...string) (*Infra, error) {
	c, err := loadInfraConfig(env, needs)
	if err != nil {
		return nil, err
	}
	in := &Infra{Registry: reg, Log: log, Topology: c.nats.Topology}
	var conn *nats.Conn
	if needs.NATS {
		if conn, err = c.nats.Connect(strings.Join(names, ","), InboxPrefix(names)); err != nil {
			return nil, err
		}
	}
	if err := in.attach(ctx, conn, c.dsn, c.maxConns, c.blob, needs); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

// attach completes Infra around an open NATS connection, or none when
// needs has no NATS (the account commands use PostgreSQL alone).
func (in *Infra) attach(ctx context.Context, conn *nats.Conn, dsn string, maxConns int, bc blob.Config, needs Needs) error {
	if conn != nil {
		in.NC = conn
		js, err := jetstream.New(conn)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		in.JS = js
	}
	if needs.Postgres {
		pc, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return errors.New("DATABASE_URL: not a valid PostgreSQL connection string") // the parse error may quote the password
		}
		// The pgx default (4 on this machine) starves 100 API clients and
		// a running export; DB_MAX_CONNS sizes the pool per process.
		pc.MaxConns = int32(max(maxConns, 1))
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			return fmt.Errorf("open PostgreSQL: %w", err)
		}
		in.Pool = pool
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("reach PostgreSQL: %w", err)
		}
	}
	if needs.S3 {
		store, err := blob.New(ctx, bc)
		if err != nil {
			return fmt.Errorf("open object store: %w", err)
		}
		in.Blobs = store
	}
	return nil
}

// Migrate applies the database migrations.
func (in *Infra) Migrate(ctx context.Context) error {
	if in.Pool == nil {
		return errors.New("migrate: no database")
	}
	return migrations.Migrate(ctx, in.Pool)
}
