package bench

import (
	"fmt"

	"github.com/aiprism/prism/cmd/prism/internal/system"
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
	row("AI-Prism bench", r.When.Format("2006-01-02 15:04 UTC"), fmt.Sprintf("%d cores, scenario %s", r.Cores, r.Scenario))
	row("", "", "")
	if parts, _ := (Options{Scenario: r.Scenario}).parts(); slices.Contains(parts, partDocuments) {
		r.printDocuments(row)
	}
	if r.Chat != nil {
		r.Chat.print(row)
	}
	if r.Small != nil {
		r.Small.print(row)
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

// rowFunc writes one row of the table.
type rowFunc func(cols ...any)

func lat(s Summary) string {
	return fmt.Sprintf("p50 %.1f  p95 %.1f  p99 %.1f ms", s.P50, s.P95, s.P99)
}

// tail is a distribution with its tail to the largest.
func tail(s Summary) string {
	return fmt.Sprintf("p50 %.1f  p90 %.1f  p99 %.1f  max %.1f ms", s.P50, s.P90, s.P99, s.Max)
}

// printDocuments writes the rows of the documents scenarios.
func (r *Report) printDocuments(row rowFunc) {
	p := r.Pipeline
	r.Reference.print(row)
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
	printResources(row, r.Process, r.Roles, "")
}

// print writes the reference's row.
func (ref ReferenceResult) print(row rowFunc) {
	row("reference: raw JetStream", fmt.Sprintf("%.0f msgs/s", ref.MsgsPerSec), fmt.Sprintf("publish→ack %s (%d msgs, %d publishers, file storage, fsync always)", lat(ref.Latency), ref.Messages, ref.Publishers))
}

// print writes the rows of the small scenario.
func (s *SmallResult) print(row rowFunc) {
	load := "closed loop, each user one document at a time"
	if s.Offered > 0 {
		load = fmt.Sprintf("offered at %g docs/s", s.Offered)
	}
	how := "by SSE"
	if s.Follow == FollowPoll {
		how = fmt.Sprintf("by polling every %s", SmallPollEvery)
	}
	where := "roles as processes"
	if s.InProcess {
		where = "roles in one process"
	}
	for _, r := range s.Rounds {
		row(fmt.Sprintf("small: round %d", r.Round), fmt.Sprintf("%.1f docs/s", r.DocsPerSec),
			fmt.Sprintf("%d of %d docs of %d bytes by %d users, %s, seen %s, %s; %d failed, %.1f s; load %s", r.Completed, s.Documents, s.DocBytes, s.Users, load, how, where, r.Failed, r.Seconds, r.LoadAvg))
		if r.FirstError != "" {
			row("  first failure", r.FirstError, "")
		}
		row("  end to end", lat(r.EndToEnd), "upload request to the client seeing it analyzed")
		if r.Server.Count > 0 {
			row("  server side", lat(r.Server), "uploaded_at to completed_at in the read model")
		}
		row("  overhead", lat(r.Overhead), "end to end minus model time")
		row("  CPU per document", perDocCPU(r.CPUPerDoc), "CPU ms per completed document")
		w := r.Writes
		row("  JetStream per document", fmt.Sprintf("%.2f writes", w.JetStream), fmt.Sprintf("%.2f stored (%s) + %.2f acks (%s)", w.StoredTotal, perKey(w.Stored), w.AckTotal, perKey(w.Acks)))
		if len(w.InMemory) > 0 {
			row("  in memory per document", fmt.Sprintf("%.2f stored", sum(w.InMemory)), perKey(w.InMemory)+" (memory storage: no fsync)")
		}
		row("  PostgreSQL per document", fmt.Sprintf("%.2f WAL syncs", w.PGWALSyncs), fmt.Sprintf("%.2f commits, %.2f WAL writes, %.1f WAL records", w.PGCommits, w.PGWALWrites, w.PGWALRecords))
		if r.Profile != "" {
			row("  profile", r.Profile, "CPU, bench process")
		}
	}
	s.Reference.print(row)
	row("small: fsync floor", fmt.Sprintf("%.0f docs/s", s.Floor), "reference msgs/s ÷ JetStream messages stored per document (last round)")
	printResources(row, s.Process, s.Roles, "small ")
}

// perDocCPU lists CPU milliseconds per document by process, largest first.
func perDocCPU(cpu map[string]float64) string {
	ms := map[string]float64{}
	for k, v := range cpu {
		ms[k] = 1000 * v
	}
	return joinLargest(ms, "%s %.2f")
}

// sum adds m's values.
func sum(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// perKey lists per-document figures, largest first.
func perKey(m map[string]float64) string { return joinLargest(m, "%s %.2f") }

// joinLargest formats m's entries with format, largest value first.
func joinLargest[V int | float64](m map[string]V, format string) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf(format, k, m[k])
	}
	return strings.Join(parts, ", ")
}

// print writes the rows of the chat scenario.
func (c *ChatResult) print(row rowFunc) {
	ref := c.Reference
	row("chat: time to first token", tail(c.FirstToken), fmt.Sprintf("POST of the question to its first delta event at the client; %d chats x %d questions (first ones spread over %.1f s), simulator speed %g", c.Chats, c.QuestionsPerChat, c.Ramp, c.SimSpeed))
	for _, k := range []struct{ name, what string }{
		{"ask", "POST to the question's publication (API)"},
		{"answer", "publication to the first delta written (analyzer, the model's first token included)"},
		{"deliver", "first delta written to the client (NATS, API relay, SSE)"},
	} {
		row("  stage "+k.name, tail(c.Stages[k.name]), k.what)
	}
	row("chat: whole answer", tail(c.Answer), "POST of the question to its answer event")
	row("  simulator alone: first token", tail(ref.FirstToken), fmt.Sprintf("ConverseStream to its first text delta through the bedrockruntime client: the chats' conversations again, %d calls, %d at once, %s", ref.Calls, ref.Concurrency, ref.Model))
	row("  simulator alone: whole answer", tail(ref.Answer), fmt.Sprintf("to the end of its stream; %d failed", ref.Failed))
	if ref.FirstError != "" {
		row("  simulator's first failure", ref.FirstError, "")
	}
	row("chat: added first token", fmt.Sprintf("p50 %+.1f  p99 %+.1f ms", c.Added.P50, c.Added.P99), "pipeline minus simulator alone at each quantile: a difference of two distributions, not of paired requests")
	row("chat: answers", fmt.Sprintf("%.1f answers/s", c.AnswersPerSec),
		fmt.Sprintf("%d asked, %d answered, %d failed, %d missing, %d refused, %d not asked, %d garbled; %.1f s", c.Asked, c.Answered, c.Failed, c.Missing, c.Refused, c.NotAsked, c.Garbled, c.Seconds))
	if c.FirstError != "" {
		row("  first trouble", c.FirstError, "")
	}
	printResources(row, c.Process, c.Roles, "chat ")
}

// printResources writes what a system's processes used.
func printResources(row rowFunc, p ProcessResources, roles []system.Usage, label string) {
	if len(roles) > 0 {
		row(label+"bench process", fmt.Sprintf("%.1f CPU s", p.CPUSeconds), fmt.Sprintf("peak RSS %.0f MB (embedded NATS, S3, simulator, load clients; PostgreSQL not counted)", p.PeakRSSMB))
		for _, u := range roles {
			row("  role "+u.Role, fmt.Sprintf("%.1f CPU s", u.CPUSeconds), fmt.Sprintf("peak RSS %.0f MB", u.PeakRSSMB))
		}
		return
	}
	row(label+"process", fmt.Sprintf("%.1f CPU s", p.CPUSeconds), fmt.Sprintf("peak RSS %.0f MB (all roles, embedded NATS and S3 in one process; extractor workers' CPU included)", p.PeakRSSMB))
}

// mix lists counts by key, largest first.
func mix(counts map[string]int) string { return joinLargest(counts, "%s %d") }

var stageOrder = map[string]int{"ingest": 0, "extract": 1, "analyze": 2, "deliver": 3}
