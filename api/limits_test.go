package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// limitedReplica is one more API server on the env's NATS, database and object
// store, with its own NATS connection (as a replica in another process
// has it) and the limits given. Requests through its env go to it.
type replica struct {
	*env
	// kill makes the replica die without a word: its NATS connection
	// drops (nothing it holds is released or refreshed any more), then
	// its server stops.
	kill func()
}

func (e *env) limitedReplica(lim api.Limits, leaseTTL time.Duration) *replica {
	e.t.Helper()
	ctx := context.Background()
	nc, err := nats.Connect(e.js.Conn().ConnectedUrl(), nats.NoReconnect())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	limits, err := quota.Open(ctx, js, quota.Config{LeaseTTL: leaseTTL})
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	srv := api.New(api.Config{Auth: api.AuthToken, MaxUploadBytes: 10 << 20, SSEHeartbeat: 200 * time.Millisecond, ReadTimeout: time.Minute, Limits: lim},
		api.Deps{
			NC: nc, JS: js, Pool: e.pool, Documents: store.New(e.pool), Blobs: e.blobs,
			Ingest:   ingest.NewService(e.blobs, streams.NewPublisher(js, api.Source), 10<<20),
			Registry: obs.NewRegistry(), Log: zerolog.New(zerolog.NewTestWriter(e.t)).Level(zerolog.ErrorLevel),
			Quota: limits, Listener: ln,
		})
	runCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Run(runCtx) }()
	var once sync.Once
	end := func() {
		once.Do(func() {
			stop()
			if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
				e.t.Errorf("replica stopped with: %v", err)
			}
		})
	}
	e.t.Cleanup(end)
	r := *e
	r.url = "http://" + ln.Addr().String()
	return &replica{env: &r, kill: func() { nc.Close(); end() }}
}

// postUpload sends one small upload as owner.
func (e *env) postUpload(owner, name string) (response, error) {
	body, ct := multipartBody("file", name, []byte("the text of "+name))
	return e.send(http.MethodPost, "/api/v1/documents", owner, body, "Content-Type", ct)
}

// tooMany checks a 429 of class: problem+json, the detail, and a
// Retry-After of at most max seconds.
func tooMany(t *testing.T, r response, class string, max int, detail ...string) {
	t.Helper()
	p := r.problem(t, http.StatusTooManyRequests, class)
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > max {
		t.Fatalf("%s: Retry-After %q, want 1 to %d seconds", class, r.Header.Get("Retry-After"), max)
	}
	for _, d := range detail {
		if !strings.Contains(p.Detail, d) {
			t.Fatalf("%s: detail %q does not say %q", class, p.Detail, d)
		}
	}
}

// Uploads raced over two replicas are accepted exactly up to the
// per-minute limit; the rest get 429 saying which limit and when it
// frees up, and nothing of them is stored. Another owner is not held
// back.
func TestUploadsPerMinuteHoldAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	const limit = 6
	lim := api.Limits{UploadsPerMinute: limit, DocsInFlight: 1000}
	reps := []*replica{e.limitedReplica(lim, 0), e.limitedReplica(lim, 0)}
	objects, events := len(e.bucketContents()), e.docsEvents()

	var mu sync.Mutex
	var accepted, refused []response
	var wg sync.WaitGroup
	for i := range 3 * limit {
		wg.Go(func() {
			r, err := reps[i%2].postUpload(alice, "doc-"+itoa(i)+".txt")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Error(err)
			case r.StatusCode == http.StatusAccepted:
				accepted = append(accepted, r)
			default:
				refused = append(refused, r)
			}
		})
	}
	wg.Wait()
	if len(accepted) != limit || len(refused) != 2*limit {
		t.Fatalf("%d uploads accepted, %d refused; want %d and %d", len(accepted), len(refused), limit, 2*limit)
	}
	for _, r := range refused {
		tooMany(t, r, "too-many-uploads", quota.Window, "6 documents in the last minute")
	}
	if o, ev := len(e.bucketContents()), e.docsEvents(); o != objects+limit || ev != events+limit {
		t.Fatalf("stored %d objects and %d events, want %d of each: a refused upload left something", o-objects, ev-events, limit)
	}
	r, err := reps[1].postUpload(bob, "bobs.txt")
	if err != nil || r.StatusCode != http.StatusAccepted {
		t.Fatalf("bob's upload: %v %d %s", err, r.StatusCode, r.body)
	}
}

// Documents in flight are counted across replicas from the read model:
// the limit refuses uploads and re-analyses until a document finishes.
func TestDocumentsInFlightHoldAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	const limit = 3
	lim := api.Limits{UploadsPerMinute: 1000, DocsInFlight: limit}
	reps := []*replica{e.limitedReplica(lim, 0), e.limitedReplica(lim, 0)}
	var docs []*doc
	for i := range limit {
		d := &doc{e: e, owner: alice, id: reps[i%2].upload(alice, "doc-"+itoa(i)+".txt", []byte("text")), run: 1}
		docs = append(docs, d)
	}
	for _, rep := range reps {
		r, err := rep.postUpload(alice, "one-more.txt")
		if err != nil {
			t.Fatal(err)
		}
		tooMany(t, r, "too-many-in-flight", 60, "3 of your documents are being processed")
	}
	// One is analyzed: one place, taken at once.
	docs[0].extract("text")
	docs[0].waitSeq(docs[0].analyze(20, "low").Seq)
	reps[1].upload(alice, "next.txt", []byte("text"))
	// A re-analysis is a document in flight again.
	tooMany(t, reps[0].do(http.MethodPost, "/api/v1/documents/"+docs[0].id+"/reanalyze", alice, nil), "too-many-in-flight", 60)
	docs[1].extract("text")
	docs[1].waitSeq(docs[1].analyze(30, "low").Seq)
	expect(t, reps[0].do(http.MethodPost, "/api/v1/documents/"+docs[0].id+"/reanalyze", alice, nil), http.StatusAccepted)
	r, err := reps[1].postUpload(alice, "over.txt")
	if err != nil {
		t.Fatal(err)
	}
	tooMany(t, r, "too-many-in-flight", 60)
	// Bob has places of his own.
	reps[0].upload(bob, "bobs.txt", []byte("text"))
}

// With the daily model budget spent (the analyzers count it in the
// limits bucket), the owner's uploads and re-analyses get 429 saying so
// and when it renews, at midnight UTC; another owner's go through.
func TestSpentBudgetRefusesUploads(t *testing.T) {
	e := newEnv(t)
	d := e.analyzed(alice, "done.txt", "text", 40, "medium")
	limits, err := quota.Open(context.Background(), e.js, quota.Config{})
	if err != nil {
		t.Fatal(err)
	}
	budget := limits.Budget(1000)
	if err := budget.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := budget.Spend(context.Background(), alice, d.id, 1, 1, 999); err != nil {
		t.Fatal(err)
	}
	e.upload(alice, "still-within.txt", []byte("text"))
	if err := budget.Spend(context.Background(), alice, "other", 1, 1, 1); err != nil {
		t.Fatal(err)
	}
	body, ct := multipartBody("file", "spent.txt", []byte("text"))
	r := e.do(http.MethodPost, "/api/v1/documents", alice, body, "Content-Type", ct)
	now := time.Now().UTC()
	untilMidnight := int(time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC).Sub(now).Seconds()) + 1
	tooMany(t, r, "budget-spent", untilMidnight, "budget of 1000 tokens is spent", "renews at midnight UTC")
	if n, _ := strconv.Atoi(r.Header.Get("Retry-After")); n < untilMidnight-5 {
		t.Fatalf("Retry-After %d s, want the %d s until midnight UTC", n, untilMidnight)
	}
	tooMany(t, e.do(http.MethodPost, "/api/v1/documents/"+d.id+"/reanalyze", alice, nil), "budget-spent", untilMidnight)
	e.upload(bob, "bobs.txt", []byte("text"))
}

// stream is an open SSE stream.
type stream struct {
	resp   *http.Response
	cancel context.CancelFunc
}

func (s *stream) close() { s.cancel(); s.resp.Body.Close() }

// openStream opens the events of document id as owner: an open stream,
// or the answer that refused it.
func (e *env) openStream(owner, id string) (*stream, response) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := e.getStream(ctx, "/api/v1/documents/"+id+"/events", owner)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		// The stream is set up (its place taken) before its first line.
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			e.t.Fatal(err)
		}
		return &stream{resp: resp, cancel: cancel}, response{}
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	return nil, response{resp, raw}
}

// refusedStream opens a stream that must be refused, and returns the
// refusal.
func (e *env) refusedStream(owner, id string) response {
	e.t.Helper()
	s, r := e.openStream(owner, id)
	if s != nil {
		s.close()
		e.t.Fatalf("a stream of %s over the limit was opened", owner)
	}
	return r
}

// Open event streams are limited per owner across replicas: the one over
// the limit gets 429 on either replica. A stream that ends frees its
// place at once; a dead replica's streams free theirs when their leases
// expire unrefreshed, and not before.
func TestEventStreamsHoldAcrossReplicasAndFreeWithADeadReplica(t *testing.T) {
	e := newEnv(t)
	const limit, ttl = 4, 2 * time.Second
	lim := api.Limits{SSEStreams: limit}
	alive, doomed := e.limitedReplica(lim, ttl), e.limitedReplica(lim, ttl)
	d := e.newDoc(alice, "watched.txt", []byte("text"))
	bobs := e.newDoc(bob, "bobs.txt", []byte("text"))
	var open []*stream
	for i := range limit {
		rep := alive
		if i%2 == 1 {
			rep = doomed
		}
		s, r := rep.openStream(alice, d.id)
		if s == nil {
			t.Fatalf("stream %d refused: %d %s", i+1, r.StatusCode, r.body)
		}
		open = append(open, s)
	}
	for _, rep := range []*replica{alive, doomed} {
		tooMany(t, rep.refusedStream(alice, d.id), "too-many-streams", int(ttl/time.Second), "4 event streams open")
	}
	if s, r := doomed.openStream(bob, bobs.id); s == nil {
		t.Fatalf("bob's stream refused: %d %s", r.StatusCode, r.body)
	} else {
		s.close()
	}
	// A stream closed on one replica frees its place for the other (the
	// server sees the client gone at its next heartbeat).
	open[0].close()
	var again *stream
	testenv.Eventually(t, 5*time.Second, "a place after a stream ended", func() bool {
		again, _ = doomed.openStream(alice, d.id)
		return again != nil
	})
	defer again.close()
	// doomed holds three streams: it dies, and they are freed by expiry.
	doomed.kill()
	died := time.Now()
	tooMany(t, alive.refusedStream(alice, d.id), "too-many-streams", int(ttl/time.Second))
	var freed []*stream
	testenv.Eventually(t, 3*ttl, "the dead replica's places", func() bool {
		if s, _ := alive.openStream(alice, d.id); s != nil {
			freed = append(freed, s)
		}
		return len(freed) == 3
	})
	if took := time.Since(died); took < ttl/2 {
		t.Fatalf("the dead replica's places freed after %s, before its leases could expire (%s)", took, ttl)
	}
	for _, s := range freed {
		s.close()
	}
}

// Exports are limited per owner across replicas: with two running (held
// up here by a lock on the audit trail they write), a third on either
// replica gets 429; once they finish, exports run again.
func TestExportsHoldAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	e.analyzed(alice, "exported.txt", "text", 40, "medium")
	lim := api.Limits{Exports: 2}
	reps := []*replica{e.limitedReplica(lim, 0), e.limitedReplica(lim, 0)}
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `LOCK TABLE document_events IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	results := make(chan response, 3)
	export := func(rep *replica, owner string) {
		r, err := rep.send(http.MethodGet, "/api/v1/assessments/export?format=json", owner, nil)
		if err != nil {
			t.Error(err)
		}
		results <- r
	}
	waiting := func(n int) func() bool {
		return func() bool {
			var got int
			err := e.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%audit:exported%'`).Scan(&got)
			return err == nil && got == n
		}
	}
	for _, rep := range reps {
		go export(rep, alice)
	}
	testenv.Eventually(t, 10*time.Second, "two exports waiting on the audit trail", waiting(2))
	for _, rep := range reps {
		tooMany(t, rep.get("/api/v1/assessments/export", alice), "too-many-exports", 30, "2 exports running")
		tooMany(t, rep.do(http.MethodPost, "/api/v1/assessments/export", alice, strings.NewReader(`{}`), "Content-Type", "application/json"),
			"too-many-exports", 30)
	}
	// Bob's export is not held back by alice's: it runs (and waits too).
	go export(reps[0], bob)
	testenv.Eventually(t, 10*time.Second, "bob's export waiting on the audit trail", waiting(3))
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		expect(t, <-results, http.StatusOK)
	}
	expect(t, reps[1].get("/api/v1/assessments/export", alice), http.StatusOK)
}
