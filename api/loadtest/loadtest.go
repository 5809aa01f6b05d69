// Package loadtest measures an HTTP API the way its users load it: a fixed
// number of concurrent clients, each sending its next request once the
// previous one is answered (a closed loop), for a fixed time. It reports
// latency percentiles and throughput. The API's benchmarks use it, and
// `prism bench` can point it at a running system.
//
// Without pacing the clients saturate the server, so latency is mostly
// queueing (clients / throughput, by Little's law) and the figure that
// matters is throughput. With Pace each client starts at most one request
// per Pace, like a user who reads the answer before asking again; latency
// then measures the service under that offered load.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Config is one measurement.
type Config struct {
	BaseURL  string        // e.g. http://127.0.0.1:8080
	Clients  int           // concurrent clients
	Duration time.Duration // how long to measure
	Paths    []string      // each client cycles through these, starting at its own offset
	Header   http.Header   // sent with every request, e.g. Authorization
	Pace     time.Duration // 0 = no pause; else each client starts a request at most every Pace
}

// Result summarizes a measurement. Latencies are of successful (2xx)
// requests; Errors counts the rest and transport failures.
type Result struct {
	Requests int
	Errors   int
	P50      time.Duration
	P90      time.Duration
	P99      time.Duration
	Max      time.Duration
	RPS      float64 // successful requests per second
}

func (r Result) String() string {
	return fmt.Sprintf("%d requests (%d errors), %.0f req/s, p50 %s, p90 %s, p99 %s, max %s",
		r.Requests, r.Errors, r.RPS, r.P50.Round(10*time.Microsecond), r.P90.Round(10*time.Microsecond),
		r.P99.Round(10*time.Microsecond), r.Max.Round(10*time.Microsecond))
}

// Run measures until cfg.Duration has passed or ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Clients < 1 || len(cfg.Paths) == 0 || cfg.Duration <= 0 {
		return Result{}, errors.New("loadtest: need at least one client, one path and a duration")
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        cfg.Clients,
		MaxIdleConnsPerHost: cfg.Clients,
		DisableCompression:  true,
	}}
	defer client.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	latencies := make([][]time.Duration, cfg.Clients)
	errs := make([]int, cfg.Clients)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Go(func() {
			// Paced clients start spread over one period, not in step.
			next := start.Add(cfg.Pace * time.Duration(c) / time.Duration(cfg.Clients))
			for i := c; ctx.Err() == nil; i++ {
				if cfg.Pace > 0 {
					if !sleepUntil(ctx, next) {
						return
					}
					next = next.Add(cfg.Pace)
				}
				d, ok := once(ctx, client, cfg, cfg.Paths[i%len(cfg.Paths)])
				switch {
				case ok:
					latencies[c] = append(latencies[c], d)
				case ctx.Err() == nil: // a request cut by the end of the run is no error
					errs[c]++
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	var res Result
	for c := range cfg.Clients {
		all = append(all, latencies[c]...)
		res.Errors += errs[c]
	}
	res.Requests = len(all) + res.Errors
	if len(all) == 0 {
		return res, fmt.Errorf("loadtest: no successful request (%d errors)", res.Errors)
	}
	slices.Sort(all)
	at := func(q float64) time.Duration { return all[min(len(all)-1, int(q*float64(len(all))))] }
	res.P50, res.P90, res.P99, res.Max = at(0.50), at(0.90), at(0.99), all[len(all)-1]
	res.RPS = float64(len(all)) / elapsed.Seconds()
	return res, nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func once(ctx context.Context, client *http.Client, cfg Config, path string) (time.Duration, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.BaseURL+path, nil)
	if err != nil {
		return 0, false
	}
	for k, v := range cfg.Header {
		req.Header[k] = v
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), err == nil && resp.StatusCode/100 == 2
}

// Measure is Run without headers, for quick use: p50 and p99 latency and
// successful requests per second (zeros if nothing succeeded).
func Measure(ctx context.Context, baseURL string, clients int, dur time.Duration, paths []string) (p50, p99 time.Duration, rps float64) {
	res, err := Run(ctx, Config{BaseURL: baseURL, Clients: clients, Duration: dur, Paths: paths})
	if err != nil {
		return 0, 0, 0
	}
	return res.P50, res.P99, res.RPS
}
