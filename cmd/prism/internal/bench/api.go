package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// APIResult is read latency at a number of concurrent clients.
type APIResult struct {
	Clients int `json:"clients"`
	// Rate is the requests/s the clients were paced to in all; 0: each
	// client sends its next request as soon as the last one is answered.
	Rate       float64 `json:"paced_rate,omitempty"`
	Seconds    float64 `json:"seconds"`
	GetDoc     Summary `json:"get_document"`
	List       Summary `json:"list_filtered"`
	ReqsPerSec float64 `json:"requests_per_sec"`
	Errors     int64   `json:"errors"`
}

// API has clients read document status and filtered lists for dur, back
// to back (rate 0: the most the API serves, latency = clients ÷
// throughput) or paced to rate requests/s in all. Paced latency counts from
// when a request was due, not when it was sent, so a slow answer that
// delays the next request is not hidden (coordinated omission).
func API(ctx context.Context, c *client, ids []string, clients int, dur time.Duration, rate float64) APIResult {
	var get, list Latencies
	var n, errs atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var interval time.Duration
			due := start
			if rate > 0 {
				interval = time.Duration(float64(clients) / rate * float64(time.Second))
				due = start.Add(interval * time.Duration(w) / time.Duration(clients)) // spread the clients
			}
			for i := 0; ctx.Err() == nil; i++ {
				t := time.Now()
				if rate > 0 {
					select {
					case <-time.After(time.Until(due)):
					case <-ctx.Done():
						return
					}
					t, due = due, due.Add(interval)
				}
				var err error
				if i%2 == 0 && len(ids) > 0 {
					err = c.get(ctx, "/api/v1/documents/"+ids[r.IntN(len(ids))])
					if err == nil {
						get.Add(time.Since(t))
					}
				} else {
					err = c.get(ctx, "/api/v1/documents?status=analyzed&limit=20")
					if err == nil {
						list.Add(time.Since(t))
					}
				}
				if err != nil && ctx.Err() == nil {
					errs.Add(1)
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	return APIResult{Clients: clients, Rate: rate, Seconds: secs, GetDoc: get.Summary(), List: list.Summary(), ReqsPerSec: float64(n.Load()) / secs, Errors: errs.Load()}
}
