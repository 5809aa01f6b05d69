package system_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/rs/zerolog"
)

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestConnectionErrorsHideCredentials: NATS and PostgreSQL out of reach,
// or a connection string with a typo: the errors name what failed, never
// the credentials in NATS_URL or DATABASE_URL.
func TestConnectionErrorsHideCredentials(t *testing.T) {
	const secret = "s3cr3t-in-the-url"
	addr := closedPort(t)
	for _, c := range []struct {
		name  string
		needs system.Needs
		env   map[string]string
		want  string
	}{
		{"NATS out of reach", system.Needs{NATS: true},
			map[string]string{"NATS_URL": "nats://prism:" + secret + "@" + addr}, "connect to NATS at nats://prism:xxxxx@" + addr},
		{"NATS token out of reach", system.Needs{NATS: true},
			map[string]string{"NATS_URL": "nats://" + secret + "@" + addr}, "connect to NATS at nats://xxxxx@" + addr},
		{"PostgreSQL out of reach", system.Needs{Postgres: true},
			map[string]string{"DATABASE_URL": "postgres://prism:" + secret + "@" + addr + "/prism?connect_timeout=2"}, "PostgreSQL"},
		{"DATABASE_URL unparsable", system.Needs{Postgres: true},
			map[string]string{"DATABASE_URL": "postgres://prism:" + secret + "@" + addr + "/prism?sslmode=bogus"}, "DATABASE_URL"},
		{"DATABASE_URL keyword form", system.Needs{Postgres: true},
			map[string]string{"DATABASE_URL": "host=127.0.0.1 port=" + strings.Split(addr, ":")[1] + " user=prism password=" + secret + " connect_timeout=2"}, "PostgreSQL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			in, err := system.Open(ctx, config.MapEnv(c.env), c.needs, obs.NewRegistry(), zerolog.Nop(), "test")
			if err == nil {
				in.Close()
				t.Fatal("opened a connection to nothing")
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("the error holds the credential: %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("the error %q does not name %q", err, c.want)
			}
		})
	}
}
