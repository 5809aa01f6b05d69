package bench

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// SSEResult is event delivery to many concurrent streams.
type SSEResult struct {
	Streams   int `json:"streams"`
	Documents int `json:"documents"`
	// Concurrent is how many streams were open at once when the events
	// began to flow: all of them, by construction.
	Concurrent int64   `json:"concurrent_streams"`
	Events     int64   `json:"events"`
	Delivery   Summary `json:"delivery"` // event time to receipt by the client
	Incomplete int64   `json:"incomplete_streams"`
	OpenSecs   float64 `json:"open_seconds"` // time to open every stream
}

// SSE measures live delivery to many streams open at once. It takes docs
// documents through the pipeline (copies first, first+1, ...), opens
// perDoc streams on each, resuming after the document's last event (so
// they wait, open and idle), and once every stream is open asks for each
// document's re-analysis: every stream then receives the new run's events
// live and ends at its outcome.
func SSE(ctx context.Context, c *client, corpus []Doc, docs, perDoc, first int) (SSEResult, error) {
	res := SSEResult{Streams: docs * perDoc, Documents: docs}
	ids, last, err := prepareSSE(ctx, c, corpus, docs, first)
	if err != nil {
		return res, fmt.Errorf("sse: prepare documents: %w", err)
	}

	var wg sync.WaitGroup
	var lat Latencies
	var events, incomplete, open atomic.Int64
	var opened sync.WaitGroup
	start := time.Now()
	for d := range docs {
		for range perDoc {
			wg.Add(1)
			opened.Add(1)
			go func() {
				defer wg.Done()
				done, once := false, sync.Once{}
				err := c.followFrom(ctx, ids[d], last[d], func() { open.Add(1); once.Do(opened.Done) }, func(r received) {
					events.Add(1)
					lat.Add(r.at.Sub(r.ev.Time))
					done = done || r.ev.EventKind().Terminal()
				})
				once.Do(opened.Done)
				if err != nil || !done {
					incomplete.Add(1)
				}
			}()
		}
	}
	opened.Wait()
	res.OpenSecs = time.Since(start).Seconds()
	res.Concurrent = open.Load()
	for d := range docs {
		if err := c.reanalyze(ctx, ids[d]); err != nil {
			return res, err
		}
	}
	wg.Wait()
	res.Events, res.Delivery, res.Incomplete = events.Load(), lat.Summary(), incomplete.Load()
	return res, nil
}

// prepareSSE uploads docs documents and follows each to its outcome,
// returning their ids and the SSE id of each one's last event.
func prepareSSE(ctx context.Context, c *client, corpus []Doc, docs, first int) ([]string, []uint64, error) {
	ids := make([]string, docs)
	last := make([]uint64, docs)
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range min(docs, 20) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				doc := corpus[d%len(corpus)]
				content, err := unique(doc, first+d)
				if err == nil {
					ids[d], err = c.upload(ctx, doc.Name, content)
				}
				if err == nil {
					err = c.follow(ctx, ids[d], func(r received) { last[d] = r.id })
				}
				if err != nil {
					failed.Store(err)
				}
			}
		}()
	}
	for d := range docs {
		work <- d
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		return nil, nil, err
	}
	return ids, last, nil
}

// reanalyze asks for a new run, waiting while the read model has not yet
// seen the document finished.
func (c *client) reanalyze(ctx context.Context, id string) error {
	for range 100 {
		code, err := c.post(ctx, "/api/v1/documents/"+id+"/reanalyze")
		if err != nil {
			return err
		}
		switch code {
		case http.StatusAccepted, http.StatusOK:
			return nil
		case http.StatusConflict:
			time.Sleep(20 * time.Millisecond)
		default:
			return fmt.Errorf("reanalyze %s: %d", id, code)
		}
	}
	return fmt.Errorf("reanalyze %s: still not finished", id)
}
