package bench

import (
	"context"
	"sync"
	"sync/atomic"
)

// SSEResult is event delivery to many concurrent streams.
type SSEResult struct {
	Streams    int     `json:"streams"`
	Documents  int     `json:"documents"`
	Events     int64   `json:"events"`
	Delivery   Summary `json:"delivery"` // event time to receipt by the client
	Incomplete int64   `json:"incomplete_streams"`
}

// SSE opens perDoc streams on each of docs new documents while they flow
// through the pipeline, and measures how late each event reaches each
// client.
func SSE(ctx context.Context, c *client, corpus []Doc, docs, perDoc int) SSEResult {
	var lat Latencies
	var events, incomplete atomic.Int64
	var wg sync.WaitGroup
	for d := range docs {
		doc := corpus[d%len(corpus)]
		id, err := c.upload(ctx, doc.Name, unique(doc, 1_000_000+d))
		if err != nil {
			incomplete.Add(int64(perDoc))
			continue
		}
		for range perDoc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				done := false
				err := c.follow(ctx, id, func(r received) {
					lat.Add(r.at.Sub(r.ev.Time))
					events.Add(1)
					done = done || r.ev.EventKind().Terminal()
				})
				if err != nil || !done {
					incomplete.Add(1)
				}
			}()
		}
	}
	wg.Wait()
	return SSEResult{Streams: docs * perDoc, Documents: docs, Events: events.Load(), Delivery: lat.Summary(), Incomplete: incomplete.Load()}
}
