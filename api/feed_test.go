package api_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
)

// sseFrame is one frame of an event stream as a client reads it; a
// comment (a heartbeat) is a frame of its own.
type sseFrame struct {
	id, event, data, retry, comment string
}

// feed is an open GET /api/v1/events, read frame by frame.
type feed struct {
	t      *testing.T
	status int
	frames chan sseFrame
	close  func()
}

// openFeed opens the owner's feed with the query ("" or "?...") and
// header fields given. It is closed when the test ends, if not before.
func (e *env) openFeed(t *testing.T, owner, query string, header ...string) *feed {
	t.Helper()
	return e.openSSE(t, owner, "/api/v1/events"+query, header...)
}

// openSSE opens the event stream at path, read frame by frame like a feed.
func (e *env) openSSE(t *testing.T, owner, path string, header ...string) *feed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := e.getStream(ctx, path, owner, header...)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	f := &feed{t: t, status: resp.StatusCode, frames: make(chan sseFrame)}
	// The reader owns the body: it closes it once the cancel has ended its read.
	read := make(chan struct{})
	f.close = func() { cancel(); <-read }
	t.Cleanup(f.close)
	go func() {
		defer close(read)
		defer resp.Body.Close()
		defer close(f.frames)
		send := func(fr sseFrame) bool {
			select {
			case f.frames <- fr:
				return true
			case <-ctx.Done():
				return false
			}
		}
		var fr sseFrame
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			field, value, _ := strings.Cut(line, ": ")
			switch {
			case line == "":
				if fr != (sseFrame{}) && !send(fr) {
					return
				}
				fr = sseFrame{}
			case strings.HasPrefix(line, ":"):
				if !send(sseFrame{comment: line}) {
					return
				}
			case field == "id":
				fr.id = value
			case field == "event":
				fr.event = value
			case field == "data":
				fr.data = value
			case field == "retry":
				fr.retry = value
			}
		}
	}()
	return f
}

// getStream sends GET path as owner with the header fields given (name,
// value, ...), for an answer read as it comes until ctx ends.
func (e *env) getStream(ctx context.Context, path, owner string, header ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tokenOf(owner))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.http.Do(req)
}

// next returns the next frame, heartbeats included.
func (f *feed) next() sseFrame {
	f.t.Helper()
	return f.nextBefore(time.Now().Add(10*time.Second), true)
}

// nextEvent returns the next event frame, past heartbeats.
func (f *feed) nextEvent() sseFrame {
	f.t.Helper()
	return f.nextBefore(time.Now().Add(10*time.Second), false)
}

func (f *feed) nextBefore(deadline time.Time, heartbeats bool) sseFrame {
	f.t.Helper()
	for {
		select {
		case fr, ok := <-f.frames:
			if !ok {
				f.t.Fatal("the feed ended")
			}
			if heartbeats || fr.comment == "" {
				return fr
			}
		case <-time.After(time.Until(deadline)):
			f.t.Fatal("nothing for 10 s")
		}
	}
}

// expectEvents reads len(want) events and checks they are want, in order.
func (f *feed) expectEvents(what string, want []*streams.Event) {
	f.t.Helper()
	for i, ev := range want {
		got := f.nextEvent()
		if got.id != strconv.FormatUint(ev.Seq, 10) || got.event != string(ev.EventKind()) ||
			!strings.Contains(got.data, `"subject":"`+ev.DocumentID()+`"`) || !strings.Contains(got.data, `"owner":"`+ev.Owner+`"`) {
			f.t.Fatalf("%s: event %d is %+v, want %s of %s at %d", what, i, got, ev.EventKind(), ev.DocumentID(), ev.Seq)
		}
	}
}

// ownerEventsAfter lists the owner's events stored in DOCS after seq,
// read from JetStream itself: what a feed must deliver.
func (e *env) ownerEventsAfter(owner string, after uint64, types ...streams.EventType) []*streams.Event {
	e.t.Helper()
	var out []*streams.Event
	err := streams.NewLog(e.js).Replay(context.Background(), streams.OwnerFilter(owner), after, 1<<62, func(ev *streams.Event) (bool, error) {
		for _, t := range types {
			if ev.EventKind() == t {
				out = append(out, ev)
			}
		}
		if len(types) == 0 {
			out = append(out, ev)
		}
		return false, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// TestEventsFeed: one stream carries the events of all of alice's
// documents and none of bob's, from now; a heartbeat comes while nothing
// happens; it resumes with Last-Event-ID after exactly the event named,
// then goes on live; ?types= keeps only the types asked for, replayed and
// live alike; an unknown type is refused.
func TestEventsFeed(t *testing.T) {
	e := newEnv(t, withAPI(func(c *api.Config) { c.SSEHeartbeat = 200 * time.Millisecond }))
	a1 := e.newDoc(alice, "before.txt", []byte("text")) // before the feed opens: not in it
	f := e.openFeed(t, alice, "")
	if f.status != http.StatusOK {
		t.Fatalf("feed: %d", f.status)
	}
	if fr := f.next(); fr.retry == "" {
		t.Fatalf("first frame %+v, want retry", fr)
	}
	start := f.next()
	pos, err := strconv.ParseUint(start.id, 10, 64)
	if err != nil || start.event != "" || start.data != "" {
		t.Fatalf("second frame %+v, want the position alone", start)
	}
	a2 := e.newDoc(alice, "after.txt", []byte("text"))
	b := e.newDoc(bob, "bob.txt", []byte("text"))
	a1.extract("text")
	b.extract("text")
	a2.extract("text")
	a1.analyze(30, "medium")
	b.analyze(80, "high")
	a2.emit(streams.Failed, streams.FailedData{Stage: streams.StageAnalyze, Reason: "model refused", ReasonClass: "gave-up"})
	want := e.ownerEventsAfter(alice, pos)
	if len(want) != 5 {
		t.Fatalf("alice has %d events after %d, want 5", len(want), pos)
	}
	f.expectEvents("live", want)
	// Nothing happens: a heartbeat keeps the connection open.
	if fr := f.next(); !strings.HasPrefix(fr.comment, ": heartbeat") {
		t.Fatalf("after the last event: %+v, want a heartbeat", fr)
	}
	f.close()

	// Resumed after the second event: the third to the fifth, once each,
	// then the next live one.
	g := e.openFeed(t, alice, "", "Last-Event-ID", strconv.FormatUint(want[1].Seq, 10))
	if fr := g.next(); g.status != http.StatusOK || fr.retry == "" {
		t.Fatalf("resumed: %d %+v", g.status, fr)
	}
	g.expectEvents("resumed", want[2:])
	live := a1.emit(streams.Progress, streams.ProgressData{Step: "late", Status: "analyzed"})
	g.expectEvents("live after the resume", []*streams.Event{live})
	g.close()

	// Only outcomes, from the position the first feed started at.
	h := e.openFeed(t, alice, "?types=analyzed,failed", "Last-Event-ID", start.id)
	h.next() // retry
	h.expectEvents("filtered", e.ownerEventsAfter(alice, pos, streams.Analyzed, streams.Failed))
	a2.emit(streams.Progress, streams.ProgressData{Step: "skipped", Status: "failed"})
	a2.run = 2
	outcome := a2.analyze(10, "low")
	h.expectEvents("filtered live", []*streams.Event{outcome})

	// Bob's feed, from the same position, holds bob's events alone.
	k := e.openFeed(t, bob, "", "Last-Event-ID", start.id)
	k.next()
	k.expectEvents("bob's", e.ownerEventsAfter(bob, pos))

	e.get("/api/v1/events?types=analyzed,assessed", alice).problem(t, http.StatusBadRequest, "bad-parameter")
	e.get("/api/v1/events", alice, "Last-Event-ID", "yesterday").problem(t, http.StatusBadRequest, "bad-last-event-id")
}

// TestEventsFeedHoldsAStreamPlace: a feed is one of the owner's event
// streams: over API_LIMIT_SSE_STREAMS it is refused, and once one closes
// the place frees.
func TestEventsFeedHoldsAStreamPlace(t *testing.T) {
	e := newEnv(t, withAPI(func(c *api.Config) { c.Limits.SSEStreams, c.SSEHeartbeat = 1, 100*time.Millisecond }))
	f := e.openFeed(t, alice, "")
	if f.status != http.StatusOK {
		t.Fatalf("first feed: %d", f.status)
	}
	f.next()
	if g := e.openFeed(t, alice, ""); g.status != http.StatusTooManyRequests {
		t.Fatalf("second feed over a limit of one: %d", g.status)
	}
	f.close()
	testenv.Eventually(t, 10*time.Second, "a feed opens once the first closed", func() bool {
		g := e.openFeed(t, alice, "")
		defer g.close()
		return g.status == http.StatusOK
	})
}
