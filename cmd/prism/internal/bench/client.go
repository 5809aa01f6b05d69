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
	return readSSE(resp.Body, func(f sseFrame) bool {
		var ev streams.Event
		if err := json.Unmarshal([]byte(f.data), &ev); err == nil {
			seq, _ := strconv.ParseUint(f.id, 10, 64)
			fn(received{ev: ev, id: seq, at: f.at})
		}
		return true
	})
}

// sseFrame is one server-sent event and when its last line arrived.
type sseFrame struct {
	id, event, data string
	at              time.Time
}

// readSSE reads a server-sent event stream until it ends or fn returns
// false, calling fn with each event as its blank line arrives. Comments
// and retry lines are skipped; the data lines of one event are joined by
// newlines, as the SSE specification says.
func readSSE(r io.Reader, fn func(sseFrame) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var f sseFrame
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				f.data, f.at = strings.Join(data, "\n"), time.Now()
				if !fn(f) {
					return nil
				}
			}
			f.event, data = "", nil // the id stays: SSE ids carry over
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			f.id = value
		case "event":
			f.event = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}

// postJSON sends body as JSON and decodes the answer into out, which must
// come with status want.
func (c *client) postJSON(ctx context.Context, path string, body, out any, want int) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(answer))
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	return nil
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
