package bedrocksim

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Bounds of the request log: the last maxLogged model calls, each text
// cut to maxLoggedText bytes, so a long run or a huge document cannot
// grow it past a few megabytes.
const (
	maxLogged     = 100
	maxLoggedText = 32 << 10
)

// LoggedRequest is one model call as the simulator received it, for tests
// that check what a client sent (GET /_sim/requests).
type LoggedRequest struct {
	At        time.Time `json:"at"`
	Model     string    `json:"model"`
	Operation string    `json:"operation"` // converse, converse-stream, invoke, invoke-with-response-stream
	System    string    `json:"system"`    // every system text, joined by newlines
	User      string    `json:"user"`      // the last user turn
	Truncated bool      `json:"truncated,omitempty"`
	Messages  int       `json:"messages"` // turns of the conversation, both roles
	// ForcedTool is the tool the request forces ("*" for any), if any.
	ForcedTool   string `json:"forced_tool,omitempty"`
	InputTokens  int    `json:"input_tokens"`
	MaxTokens    int    `json:"max_tokens,omitempty"`
	OutputTokens int    `json:"output_tokens"`
	Outcome      string `json:"outcome"` // ok, or the error code (ThrottlingException, ClientCanceled...)
}

// requestLog keeps the last maxLogged requests, oldest first.
type requestLog struct {
	mu      sync.Mutex
	entries []LoggedRequest
}

func (l *requestLog) add(e LoggedRequest) {
	e.System, e.User = cut(e.System, &e.Truncated), cut(e.User, &e.Truncated)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) == maxLogged {
		copy(l.entries, l.entries[1:])
		l.entries = l.entries[:maxLogged-1]
	}
	l.entries = append(l.entries, e)
}

// cut bounds s to maxLoggedText bytes on a rune boundary, noting when it
// did. The cut is a copy: a slice would keep the whole text alive.
func cut(s string, truncated *bool) string {
	if len(s) <= maxLoggedText {
		return s
	}
	*truncated = true
	n := maxLoggedText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n])
}

func (l *requestLog) snapshot() []LoggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LoggedRequest{}, l.entries...)
}

func (l *requestLog) clear() {
	l.mu.Lock()
	l.entries = nil
	l.mu.Unlock()
}
