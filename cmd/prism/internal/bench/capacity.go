package bench

import (
	"context"
	"time"

	"github.com/aiprism/prism/platform/config"

	"github.com/aiprism/prism/analyzer/router"
)

// CapacityResult is model capacity under overload: the simulator at
// realistic latency, every model at its quota, more documents than the
// chain can take in a minute.
type CapacityResult struct {
	Models       int     `json:"models"`
	RPMPerModel  int     `json:"rpm_per_model"`
	Documents    int     `json:"documents"`
	Failed       int     `json:"failed"`
	DrainSeconds float64 `json:"drain_seconds"`
	Throttles    int64   `json:"throttles"`
	PeakWindow   int64   `json:"peak_requests_60s"`  // summed over models
	Quota        int     `json:"quota_requests_60s"` // summed over models
	Utilization  float64 `json:"utilization"`        // the models' peak 60 s windows (not necessarily the same minute) / quota
	// Sustained: calls served over the whole drain / what the quota allows
	// in that time. The drain includes the ramp and the last calls, so
	// this errs low where Utilization may err high.
	Sustained     float64 `json:"sustained_utilization"`
	Served        int64   `json:"served_requests"`
	OverQuota     int     `json:"models_over_quota"` // models whose peak window exceeded the quota
	EndToEndP99MS float64 `json:"end_to_end_p99_ms"`
}

// Capacity runs its own system: the default seven-model chain with rpm
// requests/min each, configured exactly as the simulator's quota.
func Capacity(ctx context.Context, o Options) (CapacityResult, error) {
	rpm := 60
	chain := router.DefaultChain()
	for i := range chain {
		chain[i].RequestsPerMinute, chain[i].TokensPerMinute = rpm, 10_000_000
	}
	env, cleanup, err := benchEnv(o, 1, chain)
	if err != nil {
		return CapacityResult{}, err
	}
	defer cleanup()
	// At realistic latency a call takes seconds (time to first token plus
	// the whole assessment at tens of tokens/s): using 420 requests/min of
	// 10 s calls needs 70 in flight (Little's law), more than the default.
	env = config.Overlay(env, map[string]string{"ANALYZER_CONCURRENCY": "256"})
	dev, stop, err := startDev(ctx, env, o.Log)
	if err != nil {
		return CapacityResult{}, err
	}
	defer stop()
	docs := len(chain) * rpm * 3 / 2
	c := newClient(dev.APIURL, 200)
	start := time.Now()
	res, err := Pipeline(ctx, c, LoadCorpus(o.CorpusDir), docs, 200, firstPipeline)
	if err != nil {
		return CapacityResult{}, err
	}
	out := CapacityResult{Models: len(chain), RPMPerModel: rpm, Documents: docs, Failed: res.Failed,
		DrainSeconds: time.Since(start).Seconds(), Quota: rpm * len(chain), EndToEndP99MS: res.EndToEnd.P99}
	for _, m := range dev.Sim.Stats().Models {
		out.PeakWindow += m.PeakRequestsPer60s
		out.Served += m.Successes
		for _, n := range m.Throttles {
			out.Throttles += n
		}
		if m.PeakRequestsPer60s > int64(rpm) {
			out.OverQuota++
		}
	}
	out.Utilization = float64(out.PeakWindow) / float64(out.Quota)
	out.Sustained = float64(out.Served) / (float64(out.Quota) * out.DrainSeconds / 60)
	return out, nil
}
