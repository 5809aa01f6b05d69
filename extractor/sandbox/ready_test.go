package sandbox

import (
	"syscall"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/testenv"
)

// TestReadyWorkers: workers are started ahead of their documents, a ready
// worker that died while waiting is replaced without failing a document,
// the pool is topped up after use, and Close stops the waiting workers.
func TestReadyWorkers(t *testing.T) {
	s := newSandbox(t, func(c *Config) { c.Ready = 2 })
	defer s.Close()
	testenv.Eventually(t, 20*time.Second, "two ready workers", func() bool { return len(s.ready) == 2 })

	dead, next := <-s.ready, <-s.ready
	syscall.Kill(dead.pid, syscall.SIGKILL) // as the OOM killer would
	<-dead.exited
	s.ready <- dead
	s.ready <- next

	text, err := extractString(t, s, "first document\n")
	if err != nil || text != "first document\n" {
		t.Fatalf("with a dead ready worker: %q, %v", text, err)
	}
	if !next.hasExited() {
		t.Fatal("the document did not run in the ready worker")
	}
	for i := range 3 {
		if _, err := extractString(t, s, "more\n"); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	testenv.Eventually(t, 20*time.Second, "the pool topped up", func() bool { return len(s.ready) == 2 })

	waiting := []*proc{<-s.ready, <-s.ready}
	s.ready <- waiting[0]
	s.ready <- waiting[1]
	s.Close()
	for _, p := range waiting {
		if !p.hasExited() {
			t.Fatalf("worker %d still running after Close", p.pid)
		}
	}
}
