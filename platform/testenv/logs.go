package testenv

import (
	"bytes"
	"strings"
	"sync"
)

// Logs is a log destination tests read back, for what must (or must never)
// reach the logs: give it to zerolog.New, possibly with io.MultiWriter and
// zerolog.NewTestWriter to see the lines in the test output too. It is safe
// for concurrent use.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns every line written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Has reports whether one line holds every part, e.g. an error's text
// together with the ids it must be logged with.
func (l *Logs) Has(parts ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
