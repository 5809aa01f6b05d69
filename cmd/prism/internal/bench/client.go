package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aiprism/prism/streams"
)

// client talks to the API as a user would: HTTP uploads, reads and SSE.
type client struct {
	base string
	http *http.Client
}

func newClient(base string, conns int) *client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = conns*2, conns*2
	return &client{base: base, http: &http.Client{Transport: t}}
}

func (c *client) upload(ctx context.Context, name string, content []byte) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/documents", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("upload %s: %d %s", name, resp.StatusCode, raw)
	}
	var out struct{ ID string }
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// received is one SSE event and when it arrived.
type received struct {
	ev streams.Event
	id uint64 // the SSE id: the event's stream sequence
	at time.Time
}

// follow reads a document's SSE stream until it ends (after the terminal
// event), handing each event to fn as it arrives.
func (c *client) follow(ctx context.Context, id string, fn func(received)) error {
	return c.followFrom(ctx, id, 0, nil, fn)
}

// followFrom is follow resuming after SSE id lastID (0: from the start),
// calling opened once the stream is established.
func (c *client) followFrom(ctx context.Context, id string, lastID uint64, opened func(), fn func(received)) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/documents/"+id+"/events", nil)
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(lastID, 10))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("events of %s: %d", id, resp.StatusCode)
	}
	if opened != nil {
		opened()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var seq uint64
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			seq, _ = strconv.ParseUint(v, 10, 64)
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var ev streams.Event
			if err := json.Unmarshal([]byte(data), &ev); err == nil {
				fn(received{ev: ev, id: seq, at: time.Now()})
			}
		}
	}
	return sc.Err()
}

// post sends an empty POST and returns the status code.
func (c *client) post(ctx context.Context, path string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// get reads a URL and discards the body.
func (c *client) get(ctx context.Context, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return nil
}
