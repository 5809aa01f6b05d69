package system

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"

	"github.com/aiprism/prism/extractor"
	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/aiprism/prism/platform/config"
)

// A role process writes its own profiles to the files these variables
// name (prism bench sets them per role), so a profile of a run with one
// process per role covers the roles' costs too.
const (
	EnvCPUProfile = "PRISM_CPUPROFILE"
	EnvMemProfile = "PRISM_MEMPROFILE"
)

// StartCPUProfile profiles this process's CPU into path until the
// returned stop is called.
func StartCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile %s: %w", path, err)
		}
		return nil
	}, nil
}

// WriteHeapProfile writes this process's heap profile to path. Callers
// write it while the system still runs: after it stopped, little is in
// use. A collection first makes the in-use figures current.
func WriteHeapProfile(path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("heap profile %s: %w", path, err)
	}
	return nil
}

// WorkerProfileDir is where the extractor's sandboxed workers write their
// CPU profiles, a file each, when their role process profiles into
// cpuPath: extraction's costs are mostly theirs. `go tool pprof` merges
// the files it is given.
func WorkerProfileDir(cpuPath string) string { return cpuPath + ".workers" }

// profileWorkers has cfg's workers profile their CPU (see
// WorkerProfileDir). The directory is absolute: workers run in a
// temporary directory of their own.
func profileWorkers(cfg *extractor.Config, cpuPath string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("worker profiles: %w", err)
	}
	dir, err := filepath.Abs(WorkerProfileDir(cpuPath))
	if err != nil {
		return fmt.Errorf("worker profiles: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("worker profiles: %w", err)
	}
	cfg.WorkerCommand = []string{exe, sandbox.WorkerSubcommand, dir}
	return nil
}

// ProfileRole starts the profiles the environment asks a role process for
// (EnvCPUProfile, EnvMemProfile). The role must run under
// the returned context: with a heap profile asked for, it ends only after
// the outer one has ended and the profile is written, so the profile shows
// the role as it served rather than after shutdown. finish, called once
// the role has stopped, ends the CPU profile.
func ProfileRole(ctx context.Context, env config.Getenv) (_ context.Context, finish func() error, _ error) {
	stopCPU := func() error { return nil }
	if path := env(EnvCPUProfile); path != "" {
		var err error
		if stopCPU, err = StartCPUProfile(path); err != nil {
			return nil, nil, err
		}
	}
	path := env(EnvMemProfile)
	if path == "" {
		return ctx, stopCPU, nil
	}
	roleCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	written := make(chan error, 1)
	go func() {
		defer cancel()
		select {
		case <-ctx.Done():
			written <- WriteHeapProfile(path)
		case <-roleCtx.Done(): // the role stopped by itself
			written <- nil
		}
	}()
	return roleCtx, func() error {
		cancel()
		return errors.Join(<-written, stopCPU())
	}, nil
}
