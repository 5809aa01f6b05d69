package api_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/streams"
)

// sseEvents reads a document's SSE stream to its end and returns the ids
// and types of its events. ready is closed after the first event.
func (e *env) sseEvents(owner, id string, ready chan<- struct{}) (ids []uint64, kinds []string, err error) {
	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/documents/"+id+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tokenOf(owner))
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, nil, err
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
	return ids, kinds, sc.Err()
}

// TestSSEFanOut opens many streams on one document through the replica's
// hub and checks that each sees every event once, in order, and ends after
// the terminal event.
func TestSSEFanOut(t *testing.T) {
	e := newEnv(t)
	d := e.newDoc(alice, "fan.txt", []byte("text"))
	const streamsOpen, progress = 50, 40
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
