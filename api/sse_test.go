package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/streams"
)

// sseEvents reads a document's SSE stream to its end and returns the ids
// and types of its events. ready is closed after the first event.
func (e *env) sseEvents(owner, id string, ready chan<- struct{}) (ids []uint64, kinds []string, err error) {
	status, ids, kinds, err := e.sseStream(context.Background(), owner, id, "", ready)
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("events of %s: status %d", id, status)
	}
	return ids, kinds, err
}

// sseStream opens a document's SSE stream with the given query ("" or
// "?...") and header fields (name, value, ...) and reads it until it ends
// or ctx does.
func (e *env) sseStream(ctx context.Context, owner, id, query string, ready chan<- struct{}, header ...string) (status int, ids []uint64, kinds []string, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/api/v1/documents/"+id+"/events"+query, nil)
	if owner != "" {
		req.Header.Set("Authorization", "Bearer "+tokenOf(owner))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			ids = append(ids, n)
		}
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			kinds = append(kinds, v)
			if len(kinds) == 1 && ready != nil {
				close(ready)
			}
		}
	}
	return resp.StatusCode, ids, kinds, sc.Err()
}

// TestSSEReconnectAfterTheEnd: EventSource reconnects whenever a stream
// ends (it cannot tell an end from a drop), sending the id of the last
// event it saw. Past the final event nothing is left, and the answer is
// 204, which makes EventSource stop; from an earlier event it gets the
// rest and the stream ends after the final one. Either way the answer
// comes at once: a stream left open would reach the deadline.
func TestSSEReconnectAfterTheEnd(t *testing.T) {
	e := newEnv(t)
	// finish publishes the run's outcome and returns it.
	cases := map[string]struct {
		outcome string
		finish  func(*doc) *streams.Event
	}{
		"analyzed": {"analyzed", func(d *doc) *streams.Event { return d.analyze(20, "low") }},
		"failed": {"failed", func(d *doc) *streams.Event {
			return d.emit(streams.Failed, streams.FailedData{Stage: streams.StageAnalyze, Reason: "model refused", ReasonClass: "gave-up"})
		}},
		// The stream ends with the outcome, so an event of the run after
		// it is never sent, and is not waited for either.
		"progress after the outcome": {"analyzed", func(d *doc) *streams.Event {
			final := d.analyze(20, "low")
			if _, err := d.e.pub.Emit(context.Background(), d.meta(), streams.Progress, "late", streams.ProgressData{Step: "late", Status: "analyzed"}); err != nil {
				t.Fatal(err)
			}
			return final
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			outcome, finish := c.outcome, c.finish
			d := e.newDoc(alice, outcome+".txt", []byte("text"))
			d.extract("text")
			final := finish(d)
			ids, kinds, err := e.sseEvents(alice, d.id, nil)
			if err != nil || strings.Join(kinds, " ") != "uploaded extracted "+outcome || ids[len(ids)-1] != final.Seq {
				t.Fatalf("first stream: %v %v %v, want the final event %d last", kinds, ids, err, final.Seq)
			}
			// reconnect fails the test if the stream does not end within 10 s.
			reconnect := func(query string, header ...string) (int, []uint64, []string) {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				status, ids, kinds, err := e.sseStream(ctx, alice, d.id, query, nil, header...)
				if err != nil {
					t.Fatalf("reconnect with %q %v: %d, events %v %v, and the stream stayed open: %v", query, header, status, kinds, ids, err)
				}
				return status, ids, kinds
			}
			last := strconv.FormatUint(final.Seq, 10)
			for _, how := range []struct {
				query  string
				header []string
			}{{"", []string{"Last-Event-ID", last}}, {"?lastEventId=" + last, nil}} { // the query: as EventSource polyfills send it
				if status, ids, kinds := reconnect(how.query, how.header...); status != http.StatusNoContent || len(ids)+len(kinds) != 0 {
					t.Fatalf("reconnect after the final event (%q %v): %d %v %v, want 204", how.query, how.header, status, kinds, ids)
				}
			}
			status, rest, restKinds := reconnect("", "Last-Event-ID", strconv.FormatUint(ids[0], 10))
			if status != http.StatusOK || strings.Join(restKinds, " ") != "extracted "+outcome || !slices.Equal(rest, ids[1:]) {
				t.Fatalf("reconnect after the upload: %d %v %v, want the events after it %v", status, restKinds, rest, ids[1:])
			}
		})
	}
}

// TestSSEReconnectAfterARunsEndFollowsTheNextRun: a client that saw run
// 1's outcome reconnects once run 2 has started: it gets run 2's events
// and the stream ends with run 2's outcome.
func TestSSEReconnectAfterARunsEndFollowsTheNextRun(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "again.txt", "text", 60, "high")
	first, _, err := e.sseEvents(alice, d.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, e.do(http.MethodPost, "/api/v1/documents/"+d.id+"/reanalyze", alice, nil), http.StatusAccepted)
	d.run = 2
	final := d.analyze(10, "low")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	status, ids, kinds, err := e.sseStream(ctx, alice, d.id, "", nil, "Last-Event-ID", strconv.FormatUint(first[len(first)-1], 10))
	if err != nil || status != http.StatusOK || strings.Join(kinds, " ") != "extracted analyzed" || ids[len(ids)-1] != final.Seq {
		t.Fatalf("reconnect after run 1: %d %v %v %v, want run 2's extracted and analyzed (%d)", status, kinds, ids, err, final.Seq)
	}
}

// TestSSEFanOut opens many streams on one document through the replica's
// hub and checks that each sees every event once, in order, and ends after
// the terminal event.
func TestSSEFanOut(t *testing.T) {
	const streamsOpen, progress = 50, 40
	e := newEnv(t, withAPI(func(c *api.Config) { c.Limits.SSEStreams = streamsOpen })) // one owner's streams
	d := e.newDoc(alice, "fan.txt", []byte("text"))
	type result struct {
		ids   []uint64
		kinds []string
		err   error
	}
	results := make([]result, streamsOpen)
	var wg sync.WaitGroup
	for i := range streamsOpen {
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[i]
			r.ids, r.kinds, r.err = e.sseEvents(alice, d.id, ready)
		}()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d saw no event", i)
		}
	}
	for i := range progress {
		if _, err := e.pub.Emit(context.Background(), d.meta(), streams.Progress, strconv.Itoa(i), streams.ProgressData{Step: "chunk", Status: "analyzing"}); err != nil {
			t.Fatal(err)
		}
	}
	d.extract("text")
	d.analyze(20, "low")
	wg.Wait()
	want := "uploaded " + strings.Repeat("progress ", progress) + "extracted analyzed"
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("stream %d: %v", i, r.err)
		}
		if got := strings.Join(r.kinds, " "); got != want {
			t.Fatalf("stream %d got %s", i, got)
		}
		for j := 1; j < len(r.ids); j++ {
			if r.ids[j] <= r.ids[j-1] {
				t.Fatalf("stream %d: id %d after %d", i, r.ids[j], r.ids[j-1])
			}
		}
	}
}

// TestSSEEndsWithServer: a stream open when the server stops ends at once,
// not at the client's next heartbeat or timeout.
func TestSSEEndsWithServer(t *testing.T) {
	e := newEnv(t)
	d := e.newDoc(alice, "stop.txt", []byte("text"))
	ready := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		_, _, _ = e.sseEvents(alice, d.id, ready)
	}()
	<-ready
	e.stop()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("SSE stream still open 5 s after the server stopped")
	}
}
