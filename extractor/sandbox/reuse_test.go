package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/extractor/corpus"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/platform/testenv"
	"golang.org/x/sys/unix"
)

// A worker serves MaxDocs documents in turn, each answered with its own
// text and usage, and is then replaced; Close leaves no worker behind.
func TestWorkerServesSeveralDocumentsInTurn(t *testing.T) {
	s := newSandbox(t, func(c *Config) { c.Workers, c.MaxDocs = 1, 3 })
	var pids []int
	var workers []*proc
	for i := range 7 {
		doc := fmt.Sprintf("document number %d\n", i)
		res, u, err := s.Extract(context.Background(), strings.NewReader(doc), int64(len(doc)))
		if err != nil || res.Text != doc {
			t.Fatalf("document %d: %q, %v", i, res.Text, err)
		}
		if u.PID == 0 || u.Wall <= 0 || u.MaxRSS <= 0 {
			t.Fatalf("document %d: usage %+v", i, u)
		}
		pids = append(pids, u.PID)
		if len(s.ready) == 1 {
			p := <-s.ready
			workers = append(workers, p)
			s.ready <- p
		}
	}
	for i, want := range []int{0, 0, 0, 3, 3, 3, 6} {
		if pids[i] != pids[want] || (i == want && i > 0 && pids[i] == pids[i-1]) {
			t.Fatalf("worker pids %v: want three documents per worker", pids)
		}
	}
	s.Close()
	for _, p := range workers {
		if !p.hasExited() {
			t.Fatalf("worker %d still running after Close", p.pid)
		}
	}
}

// A document that fails retires its worker: the next document runs in a
// fresh process.
func TestFailedDocumentRetiresItsWorker(t *testing.T) {
	s := newSandbox(t, func(c *Config) { c.Workers, c.MaxDocs = 1, 10 })
	defer s.Close()
	_, first, err := s.Extract(context.Background(), strings.NewReader("fine\n"), 5)
	if err != nil {
		t.Fatal(err)
	}
	bad := "PK\x03\x04 not really a zip archive"
	_, failed, err := s.Extract(context.Background(), strings.NewReader(bad), int64(len(bad)))
	if reason.ClassOf(err, "") == "" {
		t.Fatalf("want a classified failure, got %v", err)
	}
	if failed.PID != first.PID {
		t.Fatalf("the failing document ran in worker %d, not the waiting worker %d", failed.PID, first.PID)
	}
	_, next, err := s.Extract(context.Background(), strings.NewReader("fine again\n"), 11)
	if err != nil {
		t.Fatal(err)
	}
	if next.PID == failed.PID {
		t.Fatalf("worker %d served again after a failed document", next.PID)
	}
}

// PDFs served one after another by one worker each get a fresh PDFium
// instance: every text is exactly what a worker of its own extracts.
func TestPDFsInOneWorkerMatchPDFsInTheirOwn(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join(corpus.MustDir(t), "*", "*.pdf"))
	if len(paths) < 3 {
		t.Fatalf("%d PDFs in the corpus, want at least 3", len(paths))
	}
	paths = paths[:min(len(paths), 6)]
	alone := newSandbox(t, nil)
	shared := newSandbox(t, func(c *Config) { c.Workers, c.MaxDocs = 1, len(paths) })
	defer alone.Close()
	defer shared.Close()
	pid := 0
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, _, err := alone.Extract(context.Background(), bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("%s alone: %v", p, err)
		}
		got, u, err := shared.Extract(context.Background(), bytes.NewReader(raw), int64(len(raw)))
		if err != nil {
			t.Fatalf("%s in a shared worker: %v", p, err)
		}
		if pid == 0 {
			pid = u.PID
		} else if u.PID != pid {
			t.Fatalf("%s ran in worker %d, want the shared worker %d", p, u.PID, pid)
		}
		if got.Text != want.Text || got.Pages != want.Pages {
			t.Fatalf("%s: %d pages, %d bytes in a shared worker; %d pages, %d bytes alone", p, got.Pages, len(got.Text), want.Pages, len(want.Text))
		}
	}
}

// A reused worker's soft CPU limit is raised to what it has used plus one
// document's allowance, under the hard limit set at its start (raising a
// hard limit needs privileges).
func TestReusedWorkerGetsAFreshCPUAllowance(t *testing.T) {
	s := newSandbox(t, func(c *Config) { c.Workers, c.MaxDocs = 1, 5 })
	defer s.Close()
	_, u, err := s.Extract(context.Background(), strings.NewReader("warm up\n"), 8)
	if err != nil {
		t.Fatal(err)
	}
	p := <-s.ready
	before, err := s.begin(&proc{pid: p.pid, served: 2})
	s.ready <- p
	if err != nil {
		t.Fatal(err)
	}
	var lim unix.Rlimit
	if err := unix.Prlimit(u.PID, unix.RLIMIT_CPU, nil, &lim); err != nil {
		t.Fatal(err)
	}
	wantSoft := seconds(before.User + before.System + s.cfg.CPUTime)
	if lim.Cur != wantSoft || lim.Max != s.cpuHard() {
		t.Fatalf("cpu limit soft %d hard %d; want soft %d (used %v + allowance %v), hard %d", lim.Cur, lim.Max, wantSoft,
			before.User+before.System, s.cfg.CPUTime, s.cpuHard())
	}
}

// Once a PDF has come through, new workers that will serve several
// documents start PDFium before their first document, not when a PDF
// arrives; before that they do not pay for it.
func TestWorkersStartPDFiumOnceAPDFHasComeThrough(t *testing.T) {
	raw := corpus.ReadFile(t, "vendor-contract/vendor-contract.chromium.pdf")
	s := newSandbox(t, func(c *Config) { c.Workers, c.Ready, c.MaxDocs = 1, 1, 2 })
	defer s.Close()
	eager := func() bool {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, "a ready worker", func() bool { return len(s.ready) > 0 })
		p := <-s.ready
		defer func() { s.ready <- p }()
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.pid))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Contains(env, []byte("EXTRACTOR_PDF_AT_START=1"))
	}
	if eager() {
		t.Fatal("a worker starts PDFium before any PDF came through")
	}
	if _, _, err := s.Extract(context.Background(), bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Fatal(err)
	}
	for i := 0; !eager(); i++ {
		if i == 6 {
			t.Fatal("new workers still start without PDFium after a PDF")
		}
		if _, err := extractString(t, s, "a text document\n"); err != nil {
			t.Fatal(err)
		}
	}
	if res, _, err := s.Extract(context.Background(), bytes.NewReader(raw), int64(len(raw))); err != nil || res.Pages == 0 {
		t.Fatalf("a PDF in a worker that started PDFium early: %v", err)
	}
}

// A waiting worker that can no longer take a request (its input is gone
// before the document is written) is an infrastructure failure, retried
// later, never the document's.
func TestWorkerGoneBeforeTheDocumentIsNotTheDocumentsFailure(t *testing.T) {
	s := newSandbox(t, func(c *Config) {
		c.Ready = 1
		c.Env = append(c.Env, "PRISM_TEST_WORKER_MODE=deaf")
	})
	defer s.Close()
	testenv.Eventually(t, 20*time.Second, "a ready worker", func() bool { return len(s.ready) == 1 })
	time.Sleep(300 * time.Millisecond) // it has closed its input by now
	_, _, err := s.Extract(context.Background(), strings.NewReader("a document\n"), 11)
	if err == nil || reason.ClassOf(err, "") != "" || !strings.Contains(err.Error(), "gone before the document reached it") {
		t.Fatalf("err = %v, want an unclassified infrastructure error", err)
	}
}
