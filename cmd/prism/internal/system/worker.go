package system

import (
	"context"
	"os"

	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/aiprism/prism/extractor/worker"
)

// ServeWorkerIfAsked makes a test binary that starts the extractor the
// extractor's sandboxed worker when the extractor re-executes it as one
// (its first argument is sandbox.WorkerSubcommand), and exits; otherwise
// it returns. A TestMain calls it first.
func ServeWorkerIfAsked() {
	if len(os.Args) < 2 || os.Args[1] != sandbox.WorkerSubcommand {
		return
	}
	if err := worker.Main(context.Background(), os.Stdin, os.Stdout, os.Getenv); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}
