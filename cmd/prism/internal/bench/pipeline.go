package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiprism/prism/streams"
)

// PipelineResult is the end-to-end view of simulated users.
type PipelineResult struct {
	Documents int `json:"documents"`
	Users     int `json:"users"`
	Throughput
	Stages  map[string]Summary `json:"stages"`
	Formats map[string]int     `json:"formats"` // uploads per file type
	IDs     []string           `json:"-"`
}

// Throughput is what a run of documents did, as its users saw it.
type Throughput struct {
	Seconds    float64 `json:"seconds"`
	DocsPerSec float64 `json:"docs_per_sec"` // completed documents
	Failed     int     `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
	EndToEnd   Summary `json:"end_to_end"`
	ModelTime  Summary `json:"model_time"`
	Overhead   Summary `json:"overhead"` // end to end minus model time
}

// Pipeline has users upload documents and follow each one's SSE stream to
// its assessment, n documents in all (copies first+1 to first+n), each
// user one document at a time.
func Pipeline(ctx context.Context, c *client, docs []Doc, n, users, first int) (PipelineResult, error) {
	rec := newRecorder()
	var mu sync.Mutex
	var ids []string
	start := time.Now()
	closedLoop(ctx, n, users, func(i int) {
		if id, ok := one(ctx, c, docs, first+i, rec); ok {
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
		}
	})
	res := rec.result(n, users, time.Since(start), ids)
	if err, _ := rec.firstErr.Load().(error); err != nil && len(ids) == 0 {
		return res, err
	}
	return res, nil
}

// PipelinePaced uploads documents at a fixed rate for dur, whatever the
// latency (an open loop, as independent users behave), each followed over
// SSE: the pipeline's overhead at a rate it sustains, not at saturation.
func PipelinePaced(ctx context.Context, c *client, docs []Doc, rate float64, dur time.Duration) PipelineResult {
	rec := newRecorder()
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	start := time.Now()
	n := 0
	for time.Since(start) < dur && ctx.Err() == nil {
		<-tick.C
		n++
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if id, ok := one(ctx, c, docs, firstPaced+i, rec); ok {
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}(n)
	}
	wg.Wait()
	res := rec.result(n, 0, time.Since(start), ids)
	res.DocsPerSec = float64(len(ids)) / dur.Seconds()
	return res
}

// recorder collects the timings of many documents.
type recorder struct {
	e2e, model, overhead Latencies
	stages               map[string]*Latencies
	failed               atomic.Int64
	firstErr             atomic.Value
	mu                   sync.Mutex
	formats              map[string]int
}

func newRecorder() *recorder {
	return &recorder{stages: map[string]*Latencies{"ingest": {}, "extract": {}, "analyze": {}, "deliver": {}}, formats: map[string]int{}}
}

// uploading counts an upload by its file type.
func (r *recorder) uploading(name string) {
	r.mu.Lock()
	r.formats[strings.TrimPrefix(filepath.Ext(name), ".")]++
	r.mu.Unlock()
}

func (r *recorder) fail(err error) {
	r.failed.Add(1)
	r.firstErr.CompareAndSwap(nil, err)
}

func (r *recorder) result(n, users int, took time.Duration, ids []string) PipelineResult {
	res := PipelineResult{Documents: n, Users: users, Throughput: r.throughput(took, len(ids)), Stages: map[string]Summary{}, IDs: ids}
	r.mu.Lock()
	res.Formats = maps.Clone(r.formats)
	r.mu.Unlock()
	for k, v := range r.stages {
		res.Stages[k] = v.Summary()
	}
	return res
}

// throughput is what the recorded documents did in took, completed of
// them.
func (r *recorder) throughput(took time.Duration, completed int) Throughput {
	t := Throughput{Seconds: took.Seconds(), DocsPerSec: float64(completed) / took.Seconds(), Failed: int(r.failed.Load()),
		EndToEnd: r.e2e.Summary(), ModelTime: r.model.Summary(), Overhead: r.overhead.Summary()}
	if err, _ := r.firstErr.Load().(error); err != nil {
		t.FirstError = err.Error()
	}
	return t
}

// one uploads a unique copy of document number i and follows it to its
// assessment.
func one(ctx context.Context, c *client, docs []Doc, i int, rec *recorder) (string, bool) {
	doc := docs[i%len(docs)]
	content, err := unique(doc, i)
	if err != nil {
		rec.fail(err)
		return "", false
	}
	return followed(ctx, c, Doc{Name: doc.Name, Content: content}, rec)
}

// followed uploads doc and follows its SSE stream to its assessment,
// recording the end-to-end time, the model's and each stage's.
func followed(ctx context.Context, c *client, doc Doc, rec *recorder) (string, bool) {
	rec.uploading(doc.Name)
	t0 := time.Now()
	id, err := c.upload(ctx, doc.Name, doc.Content)
	if err != nil {
		rec.fail(err)
		return "", false
	}
	times := map[streams.EventType]time.Time{}
	var done time.Time
	var modelTime time.Duration
	ok := false
	failure := "failed"
	err = c.follow(ctx, id, func(r received) {
		times[r.ev.EventKind()] = r.ev.Time
		switch r.ev.EventKind() {
		case streams.Analyzed:
			done, ok = r.at, true
			var a streams.AnalyzedData
			if json.Unmarshal(r.ev.Data, &a) == nil {
				modelTime = modelTimeOf(a.Attempts)
			}
		case streams.Failed:
			done = r.at
			var f streams.FailedData
			if json.Unmarshal(r.ev.Data, &f) == nil {
				failure = fmt.Sprintf("failed at %s (%s): %s", f.Stage, f.ReasonClass, f.Reason)
			}
		}
	})
	if err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("document %s %s", id, failure)
		}
		rec.fail(err)
		return "", false
	}
	total := done.Sub(t0)
	rec.e2e.Add(total)
	rec.model.Add(modelTime)
	rec.overhead.Add(total - modelTime)
	rec.stages["ingest"].Add(times[streams.Uploaded].Sub(t0))
	rec.stages["extract"].Add(times[streams.Extracted].Sub(times[streams.Uploaded]))
	rec.stages["analyze"].Add(times[streams.Analyzed].Sub(times[streams.Extracted]))
	rec.stages["deliver"].Add(done.Sub(times[streams.Analyzed]))
	return id, true
}

// modelTimeOf is the time the model took over a run's attempts.
func modelTimeOf(attempts []streams.Attempt) time.Duration {
	var d time.Duration
	for _, at := range attempts {
		d += time.Duration(at.LatencyMS) * time.Millisecond
	}
	return d
}
