package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/worker"
)

// The test binary doubles as the worker: the sandbox re-executes it with
// PRISM_EXTRACT_WORKER=1, exactly as production re-executes
// `prism extract-worker`. PRISM_TEST_WORKER_MODE makes it misbehave on
// purpose, to prove the parent survives and names each kind of death.
func TestMain(m *testing.M) {
	if os.Getenv("PRISM_EXTRACT_WORKER") == "1" {
		os.Exit(testWorker())
	}
	os.Exit(m.Run())
}

var sink [][]byte

func spin() {
	for i := 0; ; i++ {
		_ = i
	}
}

func testWorker() int {
	switch os.Getenv("PRISM_TEST_WORKER_MODE") {
	case "hang":
		for {
			time.Sleep(time.Hour)
		}
	case "spin": // a parser looping in Go inside Main, with Main's SIGXCPU handler
		worker.ExitOnCPULimit()
		spin()
	case "spin-unhandled": // a loop that never lets the handler run (PDFium's WebAssembly may not)
		spin()
	case "panic":
		panic("parser exploded")
	case "threads": // thread stacks count against RLIMIT_DATA too
		for {
			go func() {
				runtime.LockOSThread()
				select {}
			}()
			time.Sleep(time.Millisecond)
		}
	case "oom":
		for {
			sink = append(sink, bytes.Repeat([]byte{1}, 8<<20))
		}
	case "stack":
		debug.SetMaxStack(64 << 20)
		var recurse func(int) int
		recurse = func(n int) int { return recurse(n+1) + 1 }
		recurse(0)
	case "flood":
		fmt.Fprintf(os.Stdout, "{\"ok\":true,\"text_bytes\":%d}\n", 1<<40)
		return 0
	case "garbage":
		fmt.Fprintln(os.Stdout, "this is not the protocol")
		return 0
	case "garbage-stays": // answers outside the protocol, then waits for more
		fmt.Fprintln(os.Stdout, "this is not the protocol")
		time.Sleep(time.Hour)
	case "deaf": // stops reading at once, as a worker dying while it waits
		os.Stdin.Close()
		time.Sleep(2 * time.Second)
		return 0
	}
	if err := worker.Main(context.Background(), os.Stdin, os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testCacheDir is shared by test runs so PDFium compiles once per machine.
func testCacheDir() string { return filepath.Join(os.TempDir(), "prism-extractor-test-wazero") }

func newSandbox(tb testing.TB, mutate func(*Config)) *Sandbox {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{
		Command:      []string{exe},
		Env:          []string{"PRISM_EXTRACT_WORKER=1"},
		Workers:      2,
		Timeout:      60 * time.Second,
		WASMCacheDir: testCacheDir(),
		TmpDir:       tb.TempDir(),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func extractString(t *testing.T, s *Sandbox, doc string) (string, error) {
	t.Helper()
	res, _, err := s.Extract(context.Background(), strings.NewReader(doc), int64(len(doc)))
	return res.Text, err
}

func TestExtractText(t *testing.T) {
	s := newSandbox(t, nil)
	res, usage, err := s.Extract(context.Background(), strings.NewReader("Grüße aus dem Lenkungskreis.\r\nZweite Zeile.\r\n"), 45)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "Grüße aus dem Lenkungskreis.\nZweite Zeile.\n" || res.Format != "txt" || res.Encoding != "utf-8" || res.Words != 6 {
		t.Fatalf("res = %+v", res)
	}
	if usage.MaxRSS <= 0 || usage.Wall <= 0 {
		t.Fatalf("usage = %+v", usage)
	}
}

func TestWorkerFailuresAreClassified(t *testing.T) {
	cases := []struct {
		mode, class string
		mutate      func(*Config)
	}{
		{"hang", reason.Timeout, func(c *Config) { c.Timeout = time.Second }},
		{"panic", reason.WorkerCrashed, nil},
		{"stack", reason.WorkerCrashed, nil},
		{"flood", reason.OutputTooLarge, nil},
		{"garbage", reason.WorkerCrashed, nil},
	}
	// A worker that would serve more documents dies the same way and is
	// named the same: MaxDocs 3 as well as one process per document.
	for _, docs := range []int{1, 3} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/docs-per-worker=%d", c.mode, docs), func(t *testing.T) {
				t.Parallel()
				testWorkerFailure(t, c.mode, c.class, docs, c.mutate)
			})
		}
	}
}

// The TestRlimit tests show the worker's rlimits act. make test runs them
// in a pass of their own without the race detector: the race runtime's
// shadow memory does not fit a small RLIMIT_DATA.

// TestRlimitCPU: a worker that loops is stopped by its CPU limit, set far
// below the wall-clock limit, and the outcome names the CPU limit
// (cpu-limit), not the wall clock (timeout). A loop in Go ends at the
// soft limit (one document's allowance, also in a worker that would serve
// more); one that never lets the worker's SIGXCPU handler run ends at the
// hard limit. The CPU it used tells which of the two fired.
func TestRlimitCPU(t *testing.T) {
	const allowance = time.Second
	for _, c := range []struct {
		mode string
		docs int
		soft bool
	}{{"spin", 1, true}, {"spin", 3, true}, {"spin-unhandled", 1, false}} {
		t.Run(fmt.Sprintf("%s/docs-per-worker=%d", c.mode, c.docs), func(t *testing.T) {
			t.Parallel()
			// The wall clock is far away: a loaded machine gives the
			// worker its second of CPU slowly.
			u := testWorkerFailure(t, c.mode, reason.CPULimit, c.docs, func(cfg *Config) { cfg.Timeout, cfg.CPUTime = 2*time.Minute, allowance })
			hard := time.Duration((&Sandbox{cfg: Config{CPUTime: allowance, MaxDocs: c.docs}}).cpuHard()) * time.Second
			between := (allowance + hard) / 2
			limit := "hard"
			if c.soft {
				limit = "soft"
			}
			// rusage counts a little less CPU than the limit did.
			if cpu := u.User + u.System; cpu < allowance*3/4 || (cpu < between) != c.soft {
				t.Fatalf("the worker used %s of CPU; want the %s limit to stop it (soft %s, hard %s)", cpu, limit, allowance, hard)
			}
		})
	}
}

// TestRlimitMemory: a worker that keeps allocating is stopped at its
// memory limit (RLIMIT_DATA), with the outcome out-of-memory, and its
// peak RSS shows that limit stopped it, not the RLIMIT_AS backstop
// gigabytes above. A worker that reaches the limit starting threads
// (each stack counts) gets the same outcome.
func TestRlimitMemory(t *testing.T) {
	if raceEnabled {
		t.Fatal("TestRlimitMemory must run without -race: the race runtime's shadow memory does not fit a small RLIMIT_DATA " +
			"(make test runs them in a pass of their own; go test -race -skip '^TestRlimit' leaves them out)")
	}
	const limit = 256 << 20
	for _, docs := range []int{1, 3} {
		t.Run(fmt.Sprintf("oom/docs-per-worker=%d", docs), func(t *testing.T) {
			t.Parallel()
			u := testWorkerFailure(t, "oom", reason.OutOfMemory, docs, func(c *Config) { c.MemoryBytes = limit })
			// RSS also counts the binary's mapped code, which RLIMIT_DATA does not.
			if u.MaxRSS < limit/2 || u.MaxRSS > limit+64<<20 {
				t.Fatalf("peak RSS %d MiB; the memory limit is %d MiB", u.MaxRSS>>20, limit>>20)
			}
		})
		t.Run(fmt.Sprintf("threads/docs-per-worker=%d", docs), func(t *testing.T) {
			t.Parallel()
			testWorkerFailure(t, "threads", reason.OutOfMemory, docs, func(c *Config) { c.MemoryBytes = limit })
		})
	}
}

// testWorkerFailure runs a document through a worker in mode and checks
// the failure's class; it returns what the document cost.
func testWorkerFailure(t *testing.T, mode, class string, docs int, mutate func(*Config)) Usage {
	s := newSandbox(t, func(cfg *Config) {
		cfg.MaxDocs = docs
		cfg.Env = append(cfg.Env, "PRISM_TEST_WORKER_MODE="+mode)
		if mutate != nil {
			mutate(cfg)
		}
	})
	defer s.Close()
	start := time.Now()
	_, u, err := s.Extract(context.Background(), strings.NewReader("some text"), 9)
	var re *reason.Error
	if !errors.As(err, &re) || re.Class != class {
		t.Fatalf("err = %v (%T), want class %s", err, err, class)
	}
	t.Logf("%s -> %s: %v (wall %s, cpu %s, peak rss %d MiB)", mode, re.Class, err, time.Since(start).Round(time.Millisecond),
		(u.User + u.System).Round(time.Millisecond), u.MaxRSS>>20)
	return u
}

func TestCancelIsNotADocumentFailure(t *testing.T) {
	s := newSandbox(t, func(c *Config) { c.Env = append(c.Env, "PRISM_TEST_WORKER_MODE=hang") })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, _, err := s.Extract(ctx, strings.NewReader("x"), 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's error", err)
	}
	var re *reason.Error
	if errors.As(err, &re) {
		t.Fatalf("cancellation classified as %s", re.Class)
	}
}

func TestLimitsBeforeStart(t *testing.T) {
	s := newSandbox(t, func(c *Config) { c.Limits.MaxInputBytes = 10 })
	if _, err := extractString(t, s, "more than ten bytes"); reason.ClassOf(err, "") != reason.TooLarge {
		t.Fatalf("too large: %v", err)
	}
	if _, err := extractString(t, s, ""); reason.ClassOf(err, "") != reason.Empty {
		t.Fatalf("empty: %v", err)
	}
}

func TestWorkersBoundConcurrency(t *testing.T) {
	s := newSandbox(t, func(c *Config) { c.Workers = 1; c.Timeout = 2 * time.Second })
	if cap(s.sem) != 1 {
		t.Fatal("semaphore not sized by Workers")
	}
	done := make(chan error, 3)
	start := time.Now()
	for i := 0; i < 3; i++ {
		go func() {
			_, _, err := s.Extract(context.Background(), strings.NewReader("short note"), 10)
			done <- err
		}()
	}
	for i := 0; i < 3; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("3 documents through 1 worker slot in %s", time.Since(start).Round(time.Millisecond))
}

func TestShortSourceIsNotADocumentFailure(t *testing.T) {
	s := newSandbox(t, nil)
	_, _, err := s.Extract(context.Background(), strings.NewReader("only nine"), 100)
	var re *reason.Error
	if err == nil || errors.As(err, &re) {
		t.Fatalf("err = %v, want an unclassified (retryable) error", err)
	}
	entries, _ := os.ReadDir(s.cfg.TmpDir)
	if len(entries) != 0 {
		t.Fatalf("worker temp dirs left behind: %v", entries)
	}
}
