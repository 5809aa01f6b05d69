package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/streams"
)

// The small scenario: users upload small distinct text documents over HTTP
// and see each one finished by polling its status as a client would (or
// over SSE), on a fresh system, round after round; each round reports
// documents/s, end-to-end times, CPU per document per role and the durable
// writes per document, beside raw JetStream in the same run.

// Ways a client sees a document finished.
const (
	FollowPoll = "poll" // GET /api/v1/documents/{id} every SmallPollEvery
	FollowSSE  = "sse"  // the document's event stream
)

// SmallPollEvery is how often a polling client asks for a document's status.
const SmallPollEvery = 500 * time.Millisecond

// SmallResult is the small scenario's run.
type SmallResult struct {
	Users     int    `json:"users"`
	Documents int    `json:"documents_per_round"`
	DocBytes  int    `json:"document_bytes"`
	Follow    string `json:"follow"`
	// Offered is the documents/s uploaded whatever the latency (an open
	// loop); 0: a closed loop, each user one document at a time.
	Offered   float64 `json:"offered_docs_per_sec"`
	InProcess bool    `json:"in_process"`
	// Rounds are on one system started for the run: the first on a fresh
	// instance, the others on a warmed one.
	Rounds    []SmallRound    `json:"rounds"`
	Reference ReferenceResult `json:"reference"`
	// Floor is the reference's messages/s over the JetStream messages
	// stored per document in the last round: the documents/s that fsyncs
	// alone would allow at the reference's rate.
	Floor   float64          `json:"floor_docs_per_sec"`
	Process ProcessResources `json:"process"`
	Roles   []system.Usage   `json:"roles,omitempty"`
}

// SmallRound is one round of the small scenario.
type SmallRound struct {
	Round     int `json:"round"`
	Completed int `json:"completed"`
	// EndToEnd is from the upload request to the poll (or SSE event) that
	// shows the document finished; Server is completed_at − uploaded_at as
	// the read model has them (poll only), without the polling interval.
	Throughput
	Server Summary `json:"server_side,omitempty"`
	// CPUPerDoc is CPU seconds per completed document: "process" for the
	// whole in-process system (NATS, S3, simulator, clients and extraction
	// workers included), or "bench" and each role's process.
	CPUPerDoc map[string]float64 `json:"cpu_seconds_per_doc"`
	Writes    WritesPerDoc       `json:"writes_per_doc"`
	LoadAvg   string             `json:"load_average"` // /proc/loadavg at the round's end
	Profile   string             `json:"cpu_profile,omitempty"`
}

// roundProfile is where the bench process's CPU profile of round r goes.
func (o Options) roundProfile(r string) string {
	return profilePath(o.CPUProfile, partSmall, "") + ".round" + r
}

// smallScenario runs the rounds, then the reference, on s.
func smallScenario(ctx context.Context, o Options, s *benchSystem) (*SmallResult, error) {
	res := &SmallResult{Users: o.Users, Documents: o.Documents, DocBytes: o.DocBytes, Follow: o.Follow, Offered: o.Offered, InProcess: o.InProcess}
	c := newClient(s.apiURL, o.Users)
	nonce := make([]byte, 6)
	_, _ = rand.Read(nonce)
	for r := 1; r <= o.Rounds; r++ {
		o.Log.Info().Int("round", r).Int("documents", o.Documents).Str("follow", o.Follow).Float64("offered", o.Offered).Msg("bench: small")
		round, err := smallRound(ctx, o, s, c, hex.EncodeToString(nonce)+"-"+strconv.Itoa(r))
		if err != nil {
			return nil, fmt.Errorf("small round %d: %w", r, err)
		}
		round.Round = r
		res.Rounds = append(res.Rounds, round)
	}
	o.Log.Info().Msg("bench: reference (raw JetStream)")
	var err error
	if res.Reference, err = Reference(ctx, s.dev.Infra.JS, o.RefMessages, o.Users); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	if last := res.Rounds[len(res.Rounds)-1]; last.Writes.StoredTotal > 0 {
		res.Floor = res.Reference.MsgsPerSec / last.Writes.StoredTotal
	}
	return res, nil
}

// smallRound uploads o.Documents documents and follows each to its end,
// measuring what the system used meanwhile.
func smallRound(ctx context.Context, o Options, s *benchSystem, c *client, tag string) (SmallRound, error) {
	var round SmallRound
	if o.CPUProfile != "" {
		round.Profile = o.roundProfile(tag[strings.LastIndexByte(tag, '-')+1:])
		stop, err := system.StartCPUProfile(round.Profile)
		if err != nil {
			return round, err
		}
		defer func() { _ = stop() }()
	}
	before, err := countWrites(ctx, s.dev.Infra.JS, s.dev.Infra.Pool)
	if err != nil {
		return round, err
	}
	cpuBefore, err := cpuNow(s.procs)
	if err != nil {
		return round, err
	}
	t := smallTally{recorder: newRecorder()}
	start := time.Now()
	each := func(i int) {
		doc := Doc{Name: fmt.Sprintf("small-%d.txt", i), Content: smallText(tag, i, o.DocBytes)}
		if o.Follow == FollowSSE {
			if _, ok := followed(ctx, c, doc, t.recorder); ok {
				t.completed.Add(1)
			}
			return
		}
		t.polled(ctx, c, doc)
	}
	if o.Offered > 0 {
		offer(ctx, o.Documents, o.Offered, each)
	} else {
		closedLoop(ctx, o.Documents, o.Users, each)
	}
	took := time.Since(start)
	cpuAfter, err := cpuNow(s.procs)
	if err != nil {
		return round, err
	}
	// Consumers acknowledge moments after the clients see the result.
	// (PostgreSQL's backends report their statistics at most once a
	// second, an idle one within ten: the commits and WAL figures of a
	// round are short by what its last seconds left unreported.)
	time.Sleep(500 * time.Millisecond)
	after, err := countWrites(ctx, s.dev.Infra.JS, s.dev.Infra.Pool)
	if err != nil {
		return round, err
	}
	n := int(t.completed.Load())
	round.Completed, round.Throughput, round.Server = n, t.throughput(took, n), t.server.Summary()
	round.CPUPerDoc = map[string]float64{}
	for k, v := range cpuAfter {
		round.CPUPerDoc[k] = (v - cpuBefore[k]) / float64(max(n, 1))
	}
	round.Writes = perDoc(before, after, n)
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		round.LoadAvg = strings.Join(strings.Fields(string(raw))[:3], " ")
	}
	if n == 0 {
		return round, fmt.Errorf("no document completed: %s", round.FirstError)
	}
	return round, nil
}

// cpuNow is the CPU used so far: by this process (with its reaped
// children) as "process", or with role processes as "bench" plus one
// entry per role.
func cpuNow(procs *roleProcesses) (map[string]float64, error) {
	self := usage().cpu
	if procs == nil {
		return map[string]float64{"process": self}, nil
	}
	out := map[string]float64{"bench": self}
	for _, p := range procs.procs {
		v, err := p.CPUSeconds()
		if err != nil {
			return nil, err
		}
		out[p.Role] = v
	}
	return out, nil
}

// closedLoop runs each for 1..n on users goroutines, each one at a time.
func closedLoop(ctx context.Context, n, users int, each func(int)) {
	var next atomic.Int64
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
				each(i)
			}
		}()
	}
	wg.Wait()
}

// offer starts each for 1..n at rate a second, whatever the latency (an
// open loop, as independent users behave), and waits for them all.
func offer(ctx context.Context, n int, rate float64, each func(int)) {
	var wg sync.WaitGroup
	start := time.Now()
	for i := 1; i <= n && ctx.Err() == nil; i++ {
		// Due times from the start, so a late tick does not slow the rate.
		time.Sleep(time.Until(start.Add(time.Duration(float64(i-1) / rate * float64(time.Second)))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			each(i)
		}()
	}
	wg.Wait()
}

// smallTally collects a round's documents.
type smallTally struct {
	*recorder
	server    Latencies
	completed atomic.Int64
}

// polled uploads doc and polls its status until it is finished.
func (t *smallTally) polled(ctx context.Context, c *client, doc Doc) {
	t0 := time.Now()
	id, err := c.upload(ctx, doc.Name, doc.Content)
	if err != nil {
		t.fail(err)
		return
	}
	d, err := c.pollFinished(ctx, id, SmallPollEvery)
	if err != nil {
		t.fail(err)
		return
	}
	if d.Status != streams.StatusAnalyzed {
		t.fail(fmt.Errorf("document %s %s: %+v", id, d.Status, d.Failure))
		return
	}
	total := d.seen.Sub(t0)
	var model time.Duration
	if d.Assessment != nil {
		var attempts []streams.Attempt
		if json.Unmarshal(d.Assessment.Attempts, &attempts) == nil {
			model = modelTimeOf(attempts)
		}
	}
	t.e2e.Add(total)
	t.model.Add(model)
	t.overhead.Add(total - model)
	if d.CompletedAt != nil {
		t.server.Add(d.CompletedAt.Sub(d.UploadedAt))
	}
	t.completed.Add(1)
}

// polledDoc is what a poll of a document shows, and when it was read.
type polledDoc struct {
	Status      string     `json:"status"`
	UploadedAt  time.Time  `json:"uploaded_at"`
	CompletedAt *time.Time `json:"completed_at"`
	Failure     *struct {
		Stage, Reason, Class string
	} `json:"failure"`
	Assessment *struct {
		Attempts json.RawMessage `json:"attempts"`
	} `json:"assessment"`
	seen time.Time
}

// pollFinished reads document id every interval until its status is final.
func (c *client) pollFinished(ctx context.Context, id string, every time.Duration) (polledDoc, error) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return polledDoc{}, ctx.Err()
		}
		d, err := c.document(ctx, id)
		if err != nil {
			return d, err
		}
		if d.Status == streams.StatusAnalyzed || d.Status == streams.StatusFailed {
			return d, nil
		}
	}
}

// document reads document id as the API shows it.
func (c *client) document(ctx context.Context, id string) (polledDoc, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/documents/"+id, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return polledDoc{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return polledDoc{}, fmt.Errorf("GET document %s: %d", id, resp.StatusCode)
	}
	var d polledDoc
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return d, fmt.Errorf("GET document %s: %w", id, err)
	}
	d.seen = time.Now()
	return d, nil
}

// smallClauses are the sentences small documents are made of: enough of
// the simulator's risk lexicon that its assessments vary.
var smallClauses = []string{
	"The Supplier shall deliver the services with reasonable skill and care and in accordance with good industry practice.",
	"The Customer accepts unlimited liability for all direct and indirect damages arising out of this agreement.",
	"Either party may terminate this agreement for convenience on thirty days written notice to the other party.",
	"The Customer shall indemnify the Supplier against all claims, losses and costs brought by third parties.",
	"Personal data shall be processed only on documented instructions and transferred abroad only with safeguards.",
	"Fees are payable within sixty days of invoice; late payment bears interest at the statutory rate.",
	"This agreement renews automatically for successive terms of one year unless notice is given.",
	"Neither party shall be liable for failure to perform caused by events beyond its reasonable control.",
	"The Supplier may subcontract any of its obligations without the prior consent of the Customer.",
	"The laws of the State of Delaware govern this agreement and its courts have exclusive jurisdiction.",
}

// smallText is document i of a round tagged tag, about size bytes of
// numbered clauses: distinct in its first line, so no two documents of a
// run share a text (the result cache would answer).
func smallText(tag string, i, size int) []byte {
	var b strings.Builder
	b.Grow(size + 200)
	fmt.Fprintf(&b, "SERVICES AGREEMENT %s-%d\n\n", tag, i)
	for k := 0; b.Len() < size; k++ {
		fmt.Fprintf(&b, "%d. %s\n", k+1, smallClauses[(i*7+k*3)%len(smallClauses)])
	}
	return []byte(b.String())
}
