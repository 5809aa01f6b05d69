package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

func testWorker() int {
	switch os.Getenv("PRISM_TEST_WORKER_MODE") {
	case "hang":
		for {
			time.Sleep(time.Hour)
		}
	case "spin":
		for i := 0; ; i++ {
			_ = i
		}
	case "panic":
		panic("parser exploded")
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
		{"spin", reason.Timeout, func(c *Config) { c.Timeout = 30 * time.Second; c.CPUTime = time.Second }},
		{"panic", reason.WorkerCrashed, nil},
		{"oom", reason.OutOfMemory, func(c *Config) { c.MemoryBytes = 256 << 20 }},
		{"stack", reason.WorkerCrashed, nil},
		{"flood", reason.OutputTooLarge, nil},
		{"garbage", reason.WorkerCrashed, nil},
	}
	// A worker that would serve more documents dies the same way and is
	// named the same: MaxDocs 3 as well as one process per document.
	for _, docs := range []int{1, 3} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/docs-per-worker=%d", c.mode, docs), func(t *testing.T) {
				testWorkerFailure(t, c.mode, c.class, docs, c.mutate)
			})
		}
	}
}

func testWorkerFailure(t *testing.T, mode, class string, docs int, mutate func(*Config)) {
	if mode == "oom" && raceEnabled {
		t.Skip("the race runtime's shadow memory does not fit a small RLIMIT_DATA")
	}
	t.Parallel()
	s := newSandbox(t, func(cfg *Config) {
		cfg.MaxDocs = docs
		cfg.Env = append(cfg.Env, "PRISM_TEST_WORKER_MODE="+mode)
		if mutate != nil {
			mutate(cfg)
		}
	})
	defer s.Close()
	start := time.Now()
	_, err := extractString(t, s, "some text")
	var re *reason.Error
	if !errors.As(err, &re) || re.Class != class {
		t.Fatalf("err = %v (%T), want class %s", err, err, class)
	}
	t.Logf("%s -> %s: %v (%s)", mode, re.Class, err, time.Since(start).Round(time.Millisecond))
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

// TestRealBinary runs the production worker (`prism extract-worker`) when
// PRISM_WORKER_BIN names a built prism binary:
//
//	go build -o /tmp/prism ./cmd/prism && PRISM_WORKER_BIN=/tmp/prism go test ./extractor/sandbox -run RealBinary
func TestRealBinary(t *testing.T) {
	bin := os.Getenv("PRISM_WORKER_BIN")
	if bin == "" {
		t.Skip("set PRISM_WORKER_BIN to a prism binary to test the real worker")
	}
	s := newSandbox(t, func(c *Config) { c.Command = []string{bin, WorkerSubcommand}; c.Env = nil })
	for _, doc := range []string{"Plain text from the real worker.\n", "%PDF-1.4\n" + "garbage"} {
		res, u, err := s.Extract(context.Background(), strings.NewReader(doc), int64(len(doc)))
		t.Logf("%.20q: format=%s err=%v rss=%dMB wall=%s", doc, res.Format, err, u.MaxRSS>>20, u.Wall.Round(time.Millisecond))
		if reason.ClassOf(err, "") == reason.WorkerCrashed {
			t.Fatalf("worker crashed: %v", err)
		}
	}
}
