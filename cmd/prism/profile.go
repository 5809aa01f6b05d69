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

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/extractor/worker"
	"github.com/aiprism/prism/platform/config"
)

// profileRole starts the profiles the environment asks a role process for
// (system.EnvCPUProfile, system.EnvMemProfile). The role must run under
// the returned context: with a heap profile asked for, it ends only after
// the outer one has ended and the profile is written, so the profile shows
// the role as it served rather than after shutdown. finish, called once
// the role has stopped, ends the CPU profile.
func profileRole(ctx context.Context, env config.Getenv) (_ context.Context, finish func() error, _ error) {
	stopCPU := func() error { return nil }
	if path := env(system.EnvCPUProfile); path != "" {
		var err error
		if stopCPU, err = system.StartCPUProfile(path); err != nil {
			return nil, nil, err
		}
	}
	path := env(system.EnvMemProfile)
	if path == "" {
		return ctx, stopCPU, nil
	}
	roleCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	written := make(chan error, 1)
	go func() {
		defer cancel()
		select {
		case <-ctx.Done():
			written <- system.WriteHeapProfile(path)
		case <-roleCtx.Done(): // the role stopped by itself
			written <- nil
		}
	}()
	return roleCtx, func() error {
		cancel()
		return errors.Join(<-written, stopCPU())
	}, nil
}

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
