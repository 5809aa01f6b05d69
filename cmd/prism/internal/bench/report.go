package bench

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

func numCPU() int { return runtime.NumCPU() }

// Print writes the report as a table.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cols ...any) {
		for i, c := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, c)
		}
		fmt.Fprintln(tw)
	}
	lat := func(s Summary) string {
		return fmt.Sprintf("p50 %.1f  p95 %.1f  p99 %.1f ms", s.P50, s.P95, s.P99)
	}
	p := r.Pipeline
	row("AI-Prism bench", r.When.Format("2006-01-02 15:04 UTC"), fmt.Sprintf("%d cores", r.Cores))
	row("", "", "")
	row("reference: raw JetStream", fmt.Sprintf("%.0f msgs/s", r.Reference.MsgsPerSec), fmt.Sprintf("publish→ack %s (%d msgs, %d publishers, file storage, fsync always)", lat(r.Reference.Latency), r.Reference.Messages, r.Reference.Publishers))
	row("pipeline: documents", fmt.Sprintf("%.1f docs/s", p.DocsPerSec), fmt.Sprintf("%d docs by %d users, %d failed, %.1f s", p.Documents, p.Users, p.Failed, p.Seconds))
	row("  upload mix", mix(p.Formats), "uploads per file type")
	if p.FirstError != "" {
		row("  first failure", p.FirstError, "")
	}
	row("pipeline / reference", fmt.Sprintf("%.4f", r.Ratio), "documents/s per raw JetStream message/s")
	row("end to end", lat(p.EndToEnd), "upload request to analyzed event at the client")
	row("model time", lat(p.ModelTime), "simulator at zero latency")
	row("pipeline overhead", lat(p.Overhead), "end to end minus model time")
	stages := make([]string, 0, len(p.Stages))
	for k := range p.Stages {
		stages = append(stages, k)
	}
	sort.Slice(stages, func(i, j int) bool { return stageOrder[stages[i]] < stageOrder[stages[j]] })
	for _, k := range stages {
		s := p.Stages[k]
		share := 0.0
		if p.EndToEnd.Mean > 0 {
			share = 100 * s.Mean / p.EndToEnd.Mean
		}
		row("  stage "+k, lat(s), fmt.Sprintf("%.0f%% of the mean", share))
	}
	q := r.Paced
	row(fmt.Sprintf("paced at %.0f docs/s", float64(q.Documents)/q.Seconds), lat(q.EndToEnd), fmt.Sprintf("end to end; %d docs, %d failed", q.Documents, q.Failed))
	row("  overhead when paced", lat(q.Overhead), "end to end minus model time")
	row("api: GET /documents/{id}", lat(r.API.GetDoc), fmt.Sprintf("%d clients, %.0f req/s in all, %d errors", r.API.Clients, r.API.ReqsPerSec, r.API.Errors))
	row("api: filtered list", lat(r.API.List), "status=analyzed, limit 20")
	row("api paced: GET document", lat(r.APIPaced.GetDoc), fmt.Sprintf("%d clients paced to %.0f req/s in all, %d errors", r.APIPaced.Clients, r.APIPaced.Rate, r.APIPaced.Errors))
	row("api paced: filtered list", lat(r.APIPaced.List), "latency from when each request was due")
	for _, s := range r.SSE {
		row("sse delivery", lat(s.Delivery), fmt.Sprintf("%d streams open at once on %d documents, %d events, %d incomplete", s.Concurrent, s.Documents, s.Events, s.Incomplete))
	}
	if len(r.Roles) > 0 {
		row("bench process", fmt.Sprintf("%.1f CPU s", r.Process.CPUSeconds), fmt.Sprintf("peak RSS %.0f MB (embedded NATS, S3, simulator, load clients; PostgreSQL not counted)", r.Process.PeakRSSMB))
		for _, u := range r.Roles {
			row("  role "+u.Role, fmt.Sprintf("%.1f CPU s", u.CPUSeconds), fmt.Sprintf("peak RSS %.0f MB", u.PeakRSSMB))
		}
	} else {
		row("process", fmt.Sprintf("%.1f CPU s", r.Process.CPUSeconds), fmt.Sprintf("peak RSS %.0f MB (all roles, embedded NATS and S3 in one process; extractor workers' CPU included)", r.Process.PeakRSSMB))
	}
	if c := r.Capacity; c != nil {
		row("capacity: utilization", fmt.Sprintf("%.1f%%", 100*c.Utilization), fmt.Sprintf("peak 60 s window %d of quota %d (%d models x %d rpm), %d over quota", c.PeakWindow, c.Quota, c.Models, c.RPMPerModel, c.OverQuota))
		row("  sustained", fmt.Sprintf("%.1f%%", 100*c.Sustained), fmt.Sprintf("%d calls served in the %.1f s drain, of %.0f the quota allows", c.Served, c.DrainSeconds, float64(c.Quota)*c.DrainSeconds/60))
		row("capacity: drain", fmt.Sprintf("%.1f s", c.DrainSeconds), fmt.Sprintf("%d documents, %d failed, %d throttles, end-to-end p99 %.0f ms", c.Documents, c.Failed, c.Throttles, c.EndToEndP99MS))
	}
	for _, p := range r.Profiles {
		row("profile", p.Path, p.What)
	}
	_ = tw.Flush()
}

// mix lists counts by key, largest first.
func mix(counts map[string]int) string {
	keys := slices.Collect(maps.Keys(counts))
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, counts[k])
	}
	return strings.Join(parts, ", ")
}

var stageOrder = map[string]int{"ingest": 0, "extract": 1, "analyze": 2, "deliver": 3}
