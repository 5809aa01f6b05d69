package system

import (
	"context"
	"os"

	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/aiprism/prism/extractor/worker"
)

// ServeWorkerIfAsked makes a test binary that runs the extractor in its
// process the extractor's worker when the sandbox started it as one
// (sandbox.WorkerSubcommand): it extracts the one document and exits
// instead of running the tests again. Such tests call it first in TestMain.
func ServeWorkerIfAsked() {
	if len(os.Args) < 2 || os.Args[1] != sandbox.WorkerSubcommand {
		return
	}
	if err := worker.Main(context.Background(), os.Stdin, os.Stdout, os.Getenv); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}
