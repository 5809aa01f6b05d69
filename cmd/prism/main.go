// Command prism is AI-Prism in one binary: each subcommand is a role of the
// pipeline, and `prism dev` runs them all in one process with embedded
// NATS, S3, PostgreSQL and the Bedrock simulator.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/aiprism/prism/platform/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "prism:", err)
		os.Exit(1)
	}
}

// usage is the help text; the roles come from the role table.
func usage() string {
	var b strings.Builder
	b.WriteString(`usage: prism <command>

Roles (each runs alone against NATS_URL, DATABASE_URL and S3_* from the
environment; run several processes of one role and they share the work):
`)
	for _, r := range system.Roles() {
		fmt.Fprintf(&b, "  %-13s %s\n", r.Name, r.Usage)
	}
	b.WriteString(`
Other commands:
  dev           the whole system in one process, with embedded NATS, S3,
                PostgreSQL and the Bedrock simulator, data under ./var
  bedrock-sim   the Bedrock Runtime simulator on BEDROCKSIM_ADDR
  setup         create or update the streams, consumers and key-value
                buckets on NATS_URL, sized by NATS_REPLICAS; run it with
                the NATS admin user before the roles, and on every release
  migrate       apply the database migrations to DATABASE_URL, then add
                the admin PRISM_ADMIN_EMAIL (password in the file
                PRISM_ADMIN_PASSWORD_FILE) if no user has that email
  user          add, list, disable users and set passwords, in DATABASE_URL
                (prism user help)
  token         create, list and revoke API tokens (prism token help)
  bench         measure the pipeline, API, SSE and model capacity next to
                raw JetStream on this machine (-quick, -capacity, -h)
  healthcheck   GET this process's health endpoints (METRICS_ADDR's
                /healthz, API_ADDR's /readyz) or the URLs given; exit 1
                unless each answers 200 (the image's HEALTHCHECK)
  extract-worker  (internal) the extractor's sandboxed child process
`)
	return b.String()
}

func run(ctx context.Context, args []string, env config.Getenv, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return fmt.Errorf("no command given")
	}
	if roles, err := system.LookupRoles(args[:1]); err == nil {
		return runRole(ctx, roles[0], env, stderr)
	}
	switch cmd := args[0]; cmd {
	case "dev":
		return runDev(ctx, env, stdout, stderr)
	case "bedrock-sim":
		return runSimulator(ctx, env, stderr)
	case "migrate":
		return runMigrate(ctx, env, stderr)
	case "setup":
		log, err := logger(env, stderr, "setup")
		if err != nil {
			return err
		}
		return system.Setup(ctx, env, log)
	case "user":
		return runUser(ctx, args[1:], env, os.Stdin, stdout, stderr)
	case "token":
		return runToken(ctx, args[1:], env, stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], env, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, args[1:], env, stdout)
	case sandbox.WorkerSubcommand:
		// The extractor's isolated child: one document in on stdin, text
		// out on stdout, under the limits its parent set.
		return runWorker(ctx, args[1:], env, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return nil
	default:
		fmt.Fprint(stderr, usage())
		return fmt.Errorf("unknown command %q", cmd)
	}
}
