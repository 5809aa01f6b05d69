package pglocal

import (
	"bufio"
	"io"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// serverLog forwards the server's output to the logger line by line and
// keeps the last lines so start-up failures can quote them.
type serverLog struct {
	log  zerolog.Logger
	mu   sync.Mutex
	tail []string
}

const tailLines = 20

func (l *serverLog) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		l.log.WithLevel(level(line)).Str("component", "postgres").Msg(line)
		l.mu.Lock()
		l.tail = append(l.tail, line)
		if len(l.tail) > tailLines {
			l.tail = l.tail[len(l.tail)-tailLines:]
		}
		l.mu.Unlock()
	}
}

func (l *serverLog) lastLines() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.tail, "\n")
}

func (l *serverLog) contains(s string) bool {
	return strings.Contains(l.lastLines(), s)
}

// level maps PostgreSQL's severity ("... [pid] WARNING:  ...") to a log
// level, so server errors stand out in dev logs.
func level(line string) zerolog.Level {
	switch {
	case strings.Contains(line, "terminating connection due to administrator command"):
		// A fast shutdown (ours, on stop) ends each open session with
		// this FATAL: expected, not an error.
		return zerolog.InfoLevel
	case strings.Contains(line, "PANIC:"), strings.Contains(line, "FATAL:"), strings.Contains(line, "ERROR:"):
		return zerolog.ErrorLevel
	case strings.Contains(line, "WARNING:"):
		return zerolog.WarnLevel
	}
	return zerolog.InfoLevel
}
