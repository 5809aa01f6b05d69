package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiprism/prism/streams"
)

// PipelineResult is the end-to-end view of simulated users.
type PipelineResult struct {
	Documents  int                `json:"documents"`
	Users      int                `json:"users"`
	Seconds    float64            `json:"seconds"`
	DocsPerSec float64            `json:"docs_per_sec"`
	Failed     int                `json:"failed"`
	EndToEnd   Summary            `json:"end_to_end"`
	ModelTime  Summary            `json:"model_time"`
	Overhead   Summary            `json:"overhead"` // end to end minus model time
	Stages     map[string]Summary `json:"stages"`
	IDs        []string           `json:"-"`
}

// Pipeline has users upload documents and follow each one's SSE stream to
// its assessment, n documents in all, each user one document at a time.
func Pipeline(ctx context.Context, c *client, docs []Doc, n, users int) (PipelineResult, error) {
	var e2e, model, overhead Latencies
	stages := map[string]*Latencies{"ingest": {}, "extract": {}, "analyze": {}, "deliver": {}}
	var failed atomic.Int64
	var firstErr atomic.Value
	var next atomic.Int64
	var mu sync.Mutex
	var ids []string
	start := time.Now()
	var wg sync.WaitGroup
	for range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > n {
					return
				}
				doc := docs[i%len(docs)]
				t0 := time.Now()
				id, err := c.upload(ctx, doc.Name, unique(doc, i))
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				times := map[streams.EventType]time.Time{}
				var done time.Time
				var modelTime time.Duration
				ok := false
				err = c.follow(ctx, id, func(r received) {
					times[r.ev.EventKind()] = r.ev.Time
					switch r.ev.EventKind() {
					case streams.Analyzed:
						done, ok = r.at, true
						var a streams.AnalyzedData
						if json.Unmarshal(r.ev.Data, &a) == nil {
							for _, at := range a.Attempts {
								modelTime += time.Duration(at.LatencyMS) * time.Millisecond
							}
						}
					case streams.Failed:
						done = r.at
					}
				})
				if err != nil || !ok {
					failed.Add(1)
					if err == nil {
						err = fmt.Errorf("document %s failed", id)
					}
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				total := done.Sub(t0)
				e2e.Add(total)
				model.Add(modelTime)
				overhead.Add(total - modelTime)
				stages["ingest"].Add(times[streams.Uploaded].Sub(t0))
				stages["extract"].Add(times[streams.Extracted].Sub(times[streams.Uploaded]))
				stages["analyze"].Add(times[streams.Analyzed].Sub(times[streams.Extracted]))
				stages["deliver"].Add(done.Sub(times[streams.Analyzed]))
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	res := PipelineResult{Documents: n, Users: users, Seconds: secs, DocsPerSec: float64(len(ids)) / secs, Failed: int(failed.Load()),
		EndToEnd: e2e.Summary(), ModelTime: model.Summary(), Overhead: overhead.Summary(), Stages: map[string]Summary{}, IDs: ids}
	for k, v := range stages {
		res.Stages[k] = v.Summary()
	}
	if err, _ := firstErr.Load().(error); err != nil && len(ids) == 0 {
		return res, err
	}
	return res, nil
}
