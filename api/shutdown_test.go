package api_test

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
)

// rest reads the frames left in a stream until it ends, within 5 s.
func (f *feed) rest() []sseFrame {
	f.t.Helper()
	var frames []sseFrame
	deadline := time.After(5 * time.Second)
	for {
		select {
		case fr, ok := <-f.frames:
			if !ok {
				return frames
			}
			frames = append(frames, fr)
		case <-deadline:
			f.t.Fatalf("the stream is still open 5 s on; read %+v", frames)
		}
	}
}

// TestShutdownStopsReadinessThenDrains: when the API is told to stop,
// /readyz answers 503 "stopping" at once while requests are still served;
// once API_SHUTDOWN_DELAY has passed no new connection is accepted; every
// SSE stream (a document's and the feed) ends with a retry hint, so
// EventSource resumes on another replica with Last-Event-ID; and an upload
// in flight across all of it completes.
func TestShutdownStopsReadinessThenDrains(t *testing.T) {
	const delay = 700 * time.Millisecond
	e := newEnv(t, withAPI(func(c *api.Config) { c.ShutdownDelay = delay }))
	d := e.newDoc(alice, "stop.txt", []byte("text"))
	streams := []*feed{e.openSSE(t, alice, "/api/v1/documents/"+d.id+"/events"), e.openFeed(t, alice, "")}
	for _, s := range streams {
		if fr := s.next(); fr.retry != "2000" {
			t.Fatalf("first frame %+v, want the usual retry: 2000", fr)
		}
	}
	if fr := streams[0].nextEvent(); fr.event != "uploaded" {
		t.Fatalf("document stream: %+v, want its uploaded event", fr)
	}

	// An upload whose body is still coming when the shutdown starts.
	body, ct := multipartBody("file", "slow.txt", []byte("slow upload\n"))
	raw, _ := io.ReadAll(body)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/documents", pr)
	req.ContentLength = int64(len(raw))
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+tokenOf(alice))
	uploaded := make(chan int, 1)
	go func() {
		resp, err := e.unchecked.Do(req)
		if err != nil {
			t.Errorf("upload in flight: %v", err)
			uploaded <- 0
			return
		}
		resp.Body.Close()
		uploaded <- resp.StatusCode
	}()
	if _, err := pw.Write(raw[:len(raw)/2]); err != nil {
		t.Fatal(err)
	}

	stoppedAt := time.Now()
	e.stop()
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	time.Sleep(100 * time.Millisecond)
	resp, err := fresh.Get(e.url + "/readyz")
	if err != nil {
		t.Fatalf("readyz during the shutdown delay: %v (the listener closed before readiness had turned)", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), `"stopping"`) {
		t.Fatalf("readyz while stopping: %d %s, want 503 stopping", resp.StatusCode, b)
	}
	for _, s := range streams {
		frames := s.rest()
		if len(frames) == 0 || frames[len(frames)-1].retry != "1000" {
			t.Fatalf("stream ended without a retry hint: %+v", frames)
		}
	}
	if since := time.Since(stoppedAt); since < delay {
		t.Fatalf("SSE streams ended %s after the stop, before the %s delay: clients would reconnect here", since, delay)
	}
	addr := strings.TrimPrefix(e.url, "http://")
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a new connection is accepted after the shutdown delay")
	}
	if _, err := pw.Write(raw[len(raw)/2:]); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if code := <-uploaded; code != http.StatusAccepted {
		t.Fatalf("the upload in flight at shutdown answered %d, want 202", code)
	}
}
