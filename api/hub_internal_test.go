package api

import (
	"bufio"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"
)

// stalledWriter is a client that stops reading: its first write waits
// until the test opens the gate.
type stalledWriter struct {
	strings.Builder
	once    sync.Once
	writing chan struct{} // closed at the first write
	gate    chan struct{}
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.writing) })
	<-w.gate
	return w.Builder.Write(p)
}

// TestSlowStreamResyncsWithoutLoss gives each subscription room for two
// events and a client that stops reading while a hundred events arrive: the
// hub drops the subscription rather than wait, the stream resumes from
// JetStream, and the client still gets every event once, in order.
func TestSlowStreamResyncsWithoutLoss(t *testing.T) {
	_, _, js := testenv.NATS(t)
	ctx := context.Background()
	if err := streams.EnsureStreams(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	s := New(Config{SSEHeartbeat: time.Second}, Deps{JS: js, Registry: obs.NewRegistry(), Log: zerolog.Nop()})
	defer s.stop()
	s.hub.buffer = 2

	pub := streams.NewPublisher(js, "/test")
	m := streams.Meta{Owner: "alice", DocumentID: "doc-1", Run: 1, CorrelationID: "c-1"}
	other := streams.Meta{Owner: "alice", DocumentID: "doc-2", Run: 1, CorrelationID: "c-2"}
	if _, err := pub.Emit(ctx, m, streams.Uploaded, "", streams.UploadedData{Filename: "a.txt"}); err != nil {
		t.Fatal(err)
	}

	w := &stalledWriter{writing: make(chan struct{}), gate: make(chan struct{})}
	out := &sseOut{w: bufio.NewWriterSize(w, 64), lastRun: 1}
	done := make(chan error, 1)
	go func() { done <- s.streamDocument(ctx, out, m.Owner, m.DocumentID) }()
	// The stream is subscribed and replaying the upload when it first
	// writes; everything published from here on is live for it.
	<-w.writing

	const n = 100
	for i := range n {
		if _, err := pub.Emit(ctx, m, streams.Progress, strconv.Itoa(i), streams.ProgressData{Step: "chunk", Status: "analyzing", Message: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		// Another document's events pass through the same hub.
		if _, err := pub.Emit(ctx, other, streams.Progress, strconv.Itoa(i), streams.ProgressData{Step: "chunk", Status: "analyzing"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pub.Emit(ctx, m, streams.Analyzed, "", streams.AnalyzedData{Score: 10, Level: "low"}); err != nil {
		t.Fatal(err)
	}
	// Give the hub time to dispatch (and overflow) before the client reads.
	testenv.Eventually(t, 10*time.Second, "the stalled stream's subscription dropped", func() bool {
		s.hub.mu.Lock()
		defer s.hub.mu.Unlock()
		return len(s.hub.subs[docKey{m.Owner, m.DocumentID}]) == 0
	})
	close(w.gate)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stream did not end after the terminal event")
	}

	var kinds []string
	var last uint64
	for _, frame := range strings.Split(strings.TrimSpace(w.String()), "\n\n") {
		var id uint64
		var kind string
		for _, line := range strings.Split(frame, "\n") {
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				id, _ = strconv.ParseUint(v, 10, 64)
			}
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				kind = v
			}
			if strings.Contains(line, `"subject":"doc-2"`) {
				t.Fatalf("another document's event in the stream: %s", line)
			}
		}
		if id <= last {
			t.Fatalf("event %d after %d: out of order or repeated", id, last)
		}
		last = id
		kinds = append(kinds, kind)
	}
	want := "uploaded " + strings.Repeat("progress ", n) + "analyzed"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("got %d events:\n%s\nwant %d", len(kinds), got, n+2)
	}
	if r := testutil.ToFloat64(s.hub.resyncs); r == 0 {
		t.Fatal("the slow stream never fell behind: the test did not exercise the resync")
	} else {
		t.Logf("%d events delivered in order through %v resyncs", len(kinds), r)
	}
	if open := testutil.ToFloat64(s.hub.open); open != 0 {
		t.Fatalf("open streams gauge %v after the stream ended", open)
	}
}
