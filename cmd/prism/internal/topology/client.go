package topology

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
)

// Upload posts a document to the first api of apis that takes it,
// trying the next on a refused connection or a 5xx, as a client behind a
// load balancer would be served by another replica; it returns the id.
func Upload(ctx context.Context, apis []string, name, content string) (string, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	var last error
	for k := 0; ctx.Err() == nil; k++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apis[k%len(apis)]+"/api/v1/documents", bytes.NewReader(body.Bytes()))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out struct{ ID string }
			if resp.StatusCode == http.StatusAccepted && json.Unmarshal(raw, &out) == nil && out.ID != "" {
				return out.ID, nil
			}
			if resp.StatusCode < 500 {
				return "", fmt.Errorf("upload %s: %d %s", name, resp.StatusCode, raw)
			}
			err = fmt.Errorf("%d %s", resp.StatusCode, raw)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("upload %s: %w (last: %v)", name, ctx.Err(), last)
}

// Followed is what an SSE client saw of a document's stream.
type Followed struct {
	Seqs        []uint64 // event ids, in the order received
	Kinds       []string
	Reconnects  int // streams opened after the first
	RetryHints  int // retry: hints after the first of each stream (a server stopping)
	LastRetryMs int
	seen        func(kind string)
}

// Follow reads a document's events as EventSource does: it reconnects
// whenever a stream ends or cannot be opened, after the last retry: hint,
// with Last-Event-ID, moving to the next api (client-side failover). It
// returns once the analyzed event arrived, or the server says 204.
// seen, if not nil, is called with each event's kind as it arrives.
func Follow(ctx context.Context, apis []string, first int, id string, seen func(kind string)) (*Followed, error) {
	f := &Followed{LastRetryMs: 1000, seen: seen}
	for k := first; ; k++ {
		if ctx.Err() != nil {
			return f, fmt.Errorf("follow %s: %w (saw %v)", id, ctx.Err(), f.Kinds)
		}
		done, err := f.stream(ctx, apis[k%len(apis)], id)
		if done {
			return f, nil
		}
		_ = err // a refused connection or a stream cut: reconnect, as EventSource does
		f.Reconnects++
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(f.LastRetryMs) * time.Millisecond):
		}
	}
}

// stream reads one stream; done: the document's analyzed event arrived
// (or had, by the server's 204).
func (f *Followed) stream(ctx context.Context, api, id string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, api+"/api/v1/documents/"+id+"/events", nil)
	if n := len(f.Seqs); n > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(f.Seqs[n-1], 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return true, nil
	case http.StatusOK:
	default:
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	var seq uint64
	var kind string
	retries := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "id":
			seq, _ = strconv.ParseUint(value, 10, 64)
		case "event":
			kind = value
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil {
				f.LastRetryMs = ms
			}
			if retries++; retries > 1 {
				f.RetryHints++
			}
		case "":
			if kind == "" {
				continue
			}
			f.Seqs, f.Kinds = append(f.Seqs, seq), append(f.Kinds, kind)
			if f.seen != nil {
				f.seen(kind)
			}
			if kind == string(streams.Analyzed) {
				return true, nil
			}
			seq, kind = 0, ""
		}
	}
	return false, errors.Join(errors.New("stream ended"), sc.Err())
}

// DocLedger is what DOCS holds for one document.
type DocLedger struct {
	Seqs     []uint64
	Kinds    []string
	Uploaded int
	Analyzed int
}

// Ledger reads every event of DOCS and groups them by document.
func Ledger(ctx context.Context, js jetstream.JetStream) (map[string]*DocLedger, error) {
	c, err := js.OrderedConsumer(ctx, streams.DocsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	out := map[string]*DocLedger{}
	for {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			md, err := msg.Metadata()
			if err != nil {
				return nil, err
			}
			ev, err := streams.ParseEvent(msg.Subject(), msg.Data())
			if err != nil || ev.IsChat() {
				continue
			}
			d := out[ev.Subject]
			if d == nil {
				d = &DocLedger{}
				out[ev.Subject] = d
			}
			d.Seqs, d.Kinds = append(d.Seqs, md.Sequence.Stream), append(d.Kinds, string(ev.EventKind()))
			switch ev.EventKind() {
			case streams.Uploaded:
				d.Uploaded++
			case streams.Analyzed:
				d.Analyzed++
			}
			if md.NumPending == 0 {
				return out, batch.Error()
			}
		}
		if n == 0 {
			return out, batch.Error()
		}
	}
}
