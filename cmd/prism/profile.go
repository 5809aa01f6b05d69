package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"

	"github.com/aiprism/prism/extractor/worker"
	"github.com/aiprism/prism/platform/config"
)

// runWorker runs the extractor's sandboxed child. Given a directory (see
// system.WorkerProfileDir), it profiles its CPU into a file of its own
// there. The profile is kept in memory until the worker is done, so a
// worker killed on a deadline or at shutdown leaves no truncated file.
func runWorker(ctx context.Context, args []string, env config.Getenv, stdout io.Writer) error {
	if len(args) == 0 {
		return worker.Main(ctx, os.Stdin, stdout, env)
	}
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		return fmt.Errorf("worker cpu profile: %w", err)
	}
	err := worker.Main(ctx, os.Stdin, stdout, env)
	pprof.StopCPUProfile()
	path := filepath.Join(args[0], strconv.Itoa(os.Getpid())+".prof")
	if werr := os.WriteFile(path, prof.Bytes(), 0o644); werr != nil {
		err = errors.Join(err, fmt.Errorf("worker cpu profile: %w", werr))
	}
	return err
}
