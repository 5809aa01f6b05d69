package api

import (
	"bufio"
	"context"
	"errors"
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
// until the test opens the gate. With stop, it cancels once it has been
// sent until: a feed never ends by itself.
type stalledWriter struct {
	strings.Builder
	once    sync.Once
	writing chan struct{} // closed at the first write
	gate    chan struct{}
	until   string
	stop    context.CancelFunc
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.writing) })
	<-w.gate
	n, err := w.Builder.Write(p)
	if w.stop != nil && strings.Contains(w.Builder.String(), w.until) {
		w.stop()
	}
	return n, err
}

// TestSlowStreamResyncsWithoutLoss gives each subscription room for two
// events and a client that stops reading while a hundred events arrive: the
// hub drops the subscription rather than wait, the stream resumes from
// JetStream, and the client still gets every event once, in order. The
// same holds for a document's stream and for its owner's feed, which also
// carries the owner's other document and never another owner's.
func TestSlowStreamResyncsWithoutLoss(t *testing.T) {
	for _, feed := range []bool{false, true} {
		t.Run(map[bool]string{false: "document", true: "feed"}[feed], func(t *testing.T) { slowStreamResyncs(t, feed) })
	}
}

func slowStreamResyncs(t *testing.T, feed bool) {
	_, _, js := testenv.NATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	s := New(Config{SSEHeartbeat: time.Second}, Deps{JS: js, Registry: obs.NewRegistry(), Log: zerolog.Nop()})
	defer s.stop()
	s.hub.buffer = 2

	pub := streams.NewPublisher(js, "/test")
	m := streams.Meta{Owner: "alice", DocumentID: "doc-1", Run: 1, CorrelationID: "c-1"}
	other := streams.Meta{Owner: "alice", DocumentID: "doc-2", Run: 1, CorrelationID: "c-2"}
	foreign := streams.Meta{Owner: "bob", DocumentID: "doc-3", Run: 1, CorrelationID: "c-3"}
	if _, err := pub.Emit(ctx, m, streams.Uploaded, "", streams.UploadedData{Filename: "a.txt"}); err != nil {
		t.Fatal(err)
	}

	w := &stalledWriter{writing: make(chan struct{}), gate: make(chan struct{})}
	out := &sseOut{w: bufio.NewWriterSize(w, 64), lastRun: 1}
	done := make(chan error, 1)
	go func() {
		if feed {
			out.feed, w.until, w.stop = true, "event: analyzed", cancel
			done <- s.streamEvents(ctx, out, m.Owner, "")
			return
		}
		done <- s.streamEvents(ctx, out, m.Owner, m.DocumentID)
	}()
	// The stream is subscribed and replaying the upload when it first
	// writes; everything published from here on is live for it.
	<-w.writing

	const n = 100
	for i := range n {
		if _, err := pub.Emit(ctx, m, streams.Progress, strconv.Itoa(i), streams.ProgressData{Step: "chunk", Status: "analyzing", Message: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
		// Other documents' events pass through the same hub.
		for _, o := range []streams.Meta{other, foreign} {
			if _, err := pub.Emit(ctx, o, streams.Progress, strconv.Itoa(i), streams.ProgressData{Step: "chunk", Status: "analyzing"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := pub.Emit(ctx, m, streams.Analyzed, "", streams.AnalyzedData{Score: 10, Level: "low"}); err != nil {
		t.Fatal(err)
	}
	// Give the hub time to dispatch (and overflow) before the client reads.
	key := docKey{m.Owner, m.DocumentID}
	if feed {
		key.doc = ""
	}
	testenv.Eventually(t, 10*time.Second, "the stalled stream's subscription dropped", func() bool {
		s.hub.mu.Lock()
		defer s.hub.mu.Unlock()
		return len(s.hub.subs[key]) == 0
	})
	close(w.gate)
	select {
	case err := <-done:
		if feed && errors.Is(err, context.Canceled) {
			err = nil // the test ended the feed after its last event
		}
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
			if strings.Contains(line, `"owner":"bob"`) || (!feed && strings.Contains(line, `"subject":"doc-2"`)) {
				t.Fatalf("another document's event in the stream: %s", line)
			}
		}
		if id <= last {
			t.Fatalf("event %d after %d: out of order or repeated", id, last)
		}
		last = id
		kinds = append(kinds, kind)
	}
	progress := "progress "
	if feed {
		progress = "progress progress " // doc-1's and doc-2's
	}
	want := "uploaded " + strings.Repeat(progress, n) + "analyzed"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("got %d events:\n%s\nwant %d", len(kinds), got, strings.Count(want, " ")+1)
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
