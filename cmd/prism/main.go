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
	"syscall"

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

const usage = `usage: prism <command>

Roles (each runs alone against NATS_URL, DATABASE_URL and S3_* from the
environment; run several processes of one role and they share the work):
  ingest        store documents published to NATS on prism.intake.<owner>
  extractor     turn stored documents into text
  analyzer      assess extracted text with Claude on Bedrock
  persist       project events into PostgreSQL
  notifier      deliver webhooks for finished documents
  api           HTTP API, server-sent events and health

Other commands:
  extract-worker  (internal) the extractor's sandboxed child process
  dev           the whole system in one process, with embedded NATS, S3,
                PostgreSQL and the Bedrock simulator, data under ./var
  bedrock-sim   the Bedrock Runtime simulator on BEDROCKSIM_ADDR
  migrate       apply the database migrations to DATABASE_URL
  bench         measure the pipeline, API, SSE and model capacity next to
                raw JetStream on this machine (-quick, -capacity, -h)
`

func run(ctx context.Context, args []string, env config.Getenv, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch cmd := args[0]; cmd {
	case "dev":
		return runDev(ctx, env, stdout, stderr)
	case "bedrock-sim":
		return runSimulator(ctx, env, stderr)
	case "migrate":
		return runMigrate(ctx, env, stderr)
	case "bench":
		return runBench(ctx, args[1:], env, stdout, stderr)
	case sandbox.WorkerSubcommand:
		// The extractor's isolated child: one document in on stdin, text
		// out on stdout, under the limits its parent set.
		return runWorker(ctx, args[1:], env, stdout)
	case "ingest", "extractor", "analyzer", "persist", "notifier", "api":
		return runRole(ctx, cmd, env, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
