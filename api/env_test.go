package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/persist/migrations"
	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	registerBodyDecoders()
	testenv.Main(m)
}

// Owners and their API tokens: every test runs in token mode, so owner
// scoping is exercised with two real owners.
const (
	alice = "alice"
	bob   = "bob"
)

func tokenOf(owner string) string { return "token-of-" + owner }

// metricsToken is the env's API_METRICS_TOKEN.
const metricsToken = "metrics-token-of-the-test-0123456789"

// env is the API on a loopback listener over real NATS, S3 and
// PostgreSQL, with the real projector filling the read model.
type env struct {
	t     testing.TB
	js    jetstream.JetStream
	pool  *pgxpool.Pool
	blobs *blob.Store
	s3    blob.Config // where blobs are, to look at the bucket directly
	pub   *streams.Publisher
	srv   *api.Server
	url   string
	// http checks every exchange against openapi.json (see contract);
	// unchecked does not, for exchanges too large to hold in memory.
	http      *http.Client
	unchecked *http.Client
	contract  *contract
	stop      context.CancelFunc // stops the servers and the projector
	life      context.Context    // ends with stop
	// stopProjector stops the projector alone: the read model stays as it
	// is while the servers go on.
	stopProjector context.CancelFunc
	// Accounts, with session lifetimes and sign-in delays on clock.
	clock    *testenv.Clock
	accounts api.Accounts
	deps     api.Deps   // what every server of the env is built on
	cfg      api.Config // and configured with
}

// envConfig is what options change in an env.
type envConfig struct {
	api       api.Config
	maxUpload int64                        // ingest's limit (the API's body limit is api.MaxUploadBytes)
	s3        func(testing.TB) blob.Config // where the object store runs
}

type envOption func(*envConfig)

func withUploadLimit(n int64) envOption { return func(c *envConfig) { c.maxUpload = n } }
func withExportMaxRows(n int) envOption { return func(c *envConfig) { c.api.ExportMaxRows = n } }

// withAPI changes the API's configuration.
func withAPI(change func(*api.Config)) envOption { return func(c *envConfig) { change(&c.api) } }

// withLargeUploads lets uploads of up to n bytes through the API and ingest.
func withLargeUploads(n int64) envOption {
	return func(c *envConfig) { c.api.MaxUploadBytes, c.maxUpload = n, n }
}

// withS3InOwnProcess runs the object store in a child process, so the test
// process's heap holds only what the API itself holds.
func withS3InOwnProcess() envOption { return func(c *envConfig) { c.s3 = testenv.S3ProcessConfig } }

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	ctx := context.Background()
	_, nc, js := testenv.NATS(t)
	if err := streams.Setup(ctx, js, streams.DefaultTopology()); err != nil {
		t.Fatal(err)
	}
	cfg := envConfig{
		api: api.Config{Auth: api.AuthToken, MaxUploadBytes: 10 << 20, SSEHeartbeat: time.Second, ReadTimeout: time.Minute,
			MetricsToken: metricsToken},
		s3: testenv.S3Config,
	}
	cfg.maxUpload = cfg.api.MaxUploadBytes
	for _, o := range opts {
		o(&cfg)
	}
	s3 := cfg.s3(t)
	blobs, err := blob.New(ctx, s3)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	pc.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := migrations.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{alice, bob} {
		if _, err := pool.Exec(ctx, `INSERT INTO users (id, email) VALUES ($1, $1 || '@example.com')`, owner); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO api_tokens (id, user_id, token_sha256) VALUES ($1, $1, $2)`,
			owner, api.HashToken(tokenOf(owner))); err != nil {
			t.Fatal(err)
		}
	}

	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	clock := testenv.NewClock()
	if err := jsbind.CreateKeyValues(ctx, js, api.BucketConfigs(cfg.api, 1)...); err != nil {
		t.Fatal(err)
	}
	if err := jsbind.CreateStreams(ctx, js, quota.UsageStreamConfig(1)); err != nil {
		t.Fatal(err)
	}
	acc, err := api.OpenAccounts(ctx, cfg.api, js, pool, api.AccountsOptions{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	limits, err := quota.Open(ctx, js, quota.Config{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	projCtx, stopProjector := context.WithCancel(runCtx)
	projected := make(chan error, 1)
	go func() { projected <- persist.New(pool, log).Run(projCtx, js, persist.WithConcurrency(4)) }()
	t.Cleanup(func() {
		stop()
		if err := <-projected; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("projector stopped with: %v", err)
		}
	})
	c := loadContract(t)
	e := &env{t: t, js: js, pool: pool, blobs: blobs, s3: s3, pub: streams.NewPublisher(js, "/test"),
		http:      &http.Client{Timeout: time.Minute, Transport: &checkedTransport{t: t, c: c, next: http.DefaultTransport}},
		unchecked: &http.Client{Timeout: time.Minute},
		contract:  c, stop: stop, stopProjector: stopProjector, clock: clock, accounts: acc,
		deps: api.Deps{
			NC:        nc,
			JS:        js,
			Pool:      pool,
			Documents: store.New(pool),
			Blobs:     blobs,
			Ingest:    ingest.NewService(blobs, streams.NewPublisher(js, api.Source), cfg.maxUpload),
			Log:       log,
			Accounts:  acc,
			Quota:     limits,
		},
		cfg: cfg.api, life: runCtx,
	}
	e.srv, e.url = e.serve()
	return e
}

// serve runs another API server (a replica) on the env's NATS, database,
// object store and accounts until the env stops, and returns it with its
// URL.
func (e *env) serve() (*api.Server, string) {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	deps := e.deps
	deps.Registry, deps.Listener = obs.NewRegistry(), ln
	srv := api.New(e.cfg, deps)
	served := make(chan error, 1)
	go func() { served <- srv.Run(e.life) }()
	e.t.Cleanup(func() {
		e.stop()
		if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
			e.t.Errorf("API server stopped with: %v", err)
		}
	})
	return srv, "http://" + ln.Addr().String()
}

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	body []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s: body is not the JSON expected: %v\n%s", r.Request.URL, err, r.body)
	}
}

// problem decodes an RFC 9457 answer and checks its status and class.
func (r response) problem(t *testing.T, status int, class string) api.Problem {
	t.Helper()
	var p api.Problem
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Fatalf("%s %s: content type %q, want application/problem+json (status %d: %s)", r.Request.Method, r.Request.URL, ct, r.StatusCode, r.body)
	}
	r.json(t, &p)
	if r.StatusCode != status || p.Status != status || p.Class != class {
		t.Fatalf("%s %s: %d %+v, want %d %s", r.Request.Method, r.Request.URL, r.StatusCode, p, status, class)
	}
	return p
}

// do sends a request as owner ("" = unauthenticated).
func (e *env) do(method, path, owner string, body io.Reader, header ...string) response {
	e.t.Helper()
	r, err := e.send(method, path, owner, body, header...)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's: it returns the error.
func (e *env) send(method, path, owner string, body io.Reader, header ...string) (response, error) {
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		return response{}, err
	}
	if owner != "" {
		req.Header.Set("Authorization", "Bearer "+tokenOf(owner))
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read the body: %w", method, path, err)
	}
	return response{resp, raw}, nil
}

func (e *env) get(path, owner string, header ...string) response {
	e.t.Helper()
	return e.do(http.MethodGet, path, owner, nil, header...)
}

func expect(t testing.TB, r response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
}

// multipartBody is a form with one field.
func multipartBody(field, filename string, content []byte) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile(field, filename)
	_, _ = fw.Write(content)
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// upload posts a document through the API and returns its id.
func (e *env) upload(owner, filename string, content []byte) string {
	e.t.Helper()
	body, ct := multipartBody("file", filename, content)
	r := e.do(http.MethodPost, "/api/v1/documents", owner, body, "Content-Type", ct)
	expect(e.t, r, http.StatusAccepted)
	var out struct{ ID string }
	r.json(e.t, &out)
	return out.ID
}

// doc drives one document through the pipeline the way the extractor and
// analyzer would, publishing their events: the API, projector and stores
// are the real ones.
type doc struct {
	e     *env
	owner string
	id    string
	run   int
}

func (e *env) newDoc(owner, filename string, content []byte) *doc {
	return &doc{e: e, owner: owner, id: e.upload(owner, filename, content), run: 1}
}

func (d *doc) meta() streams.Meta {
	return streams.Meta{Owner: d.owner, DocumentID: d.id, Run: d.run, CorrelationID: "test-" + d.id}
}

func (d *doc) emit(t streams.EventType, data any) *streams.Event {
	d.e.t.Helper()
	ev, err := streams.NewEvent("/test", d.meta(), t, "", data)
	if err != nil {
		d.e.t.Fatal(err)
	}
	if err := d.e.pub.Publish(context.Background(), ev); err != nil {
		d.e.t.Fatal(err)
	}
	return ev
}

// extract stores text as the extractor does and announces it.
func (d *doc) extract(text string) *streams.Event {
	d.e.t.Helper()
	key := blob.TextKey(d.owner, d.id, fmt.Sprint(d.run))
	res, err := d.e.blobs.Put(context.Background(), key, strings.NewReader(text), int64(len(text)), "text/plain; charset=utf-8")
	if err != nil {
		d.e.t.Fatal(err)
	}
	return d.emit(streams.Extracted, streams.ExtractedData{
		Text: streams.ObjectRef{Key: key, Size: res.Size, SHA256: res.SHA256}, Format: "txt",
		Words: len(strings.Fields(text)), Chars: len([]rune(text)),
	})
}

// analyze announces an assessment as the analyzer does.
func (d *doc) analyze(score int, level string) *streams.Event {
	return d.emit(streams.Analyzed, streams.AnalyzedData{
		Assessment: json.RawMessage(fmt.Sprintf(`{"summary":"=SUM(A1) risk %d","overall_score":%d,"risk_level":%q,"risk_factors":[]}`, score, score, level)),
		Score:      score, Level: level, Model: "claude-test", PromptVersion: "v1",
		Attempts:    []streams.Attempt{{Model: "claude-test", Outcome: "ok", LatencyMS: 900}},
		InputTokens: 1200, OutputTokens: 300, CostUSD: 0.0081,
	})
}

// analyzed takes a new document all the way and waits for the read model.
func (e *env) analyzed(owner, filename, text string, score int, level string) *doc {
	e.t.Helper()
	d := e.newDoc(owner, filename, []byte(text))
	extracted := d.extract(text)
	d.waitSeq(d.analyze(score, level).Seq)
	// The projector applies events concurrently: the analyzed event can be
	// in before the extracted one that brings the text key.
	d.waitEvent(extracted.Seq)
	return d
}

// waitEvent waits until the read model has applied the document's event
// at stream sequence seq itself, whatever came after it.
func (d *doc) waitEvent(seq uint64) {
	d.e.t.Helper()
	testenv.Eventually(d.e.t, 10*time.Second, fmt.Sprintf("event %d of %s projected", seq, d.id), func() bool {
		var n int
		err := d.e.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM document_events WHERE document_id = $1 AND stream_seq = $2`, d.id, int64(seq)).Scan(&n)
		return err == nil && n == 1
	})
}

// waitSeq waits until the read model has applied the document's event at
// stream sequence seq: the newest of the row's sequence and its history's,
// as the API reads it (the row only moves with status).
func (d *doc) waitSeq(seq uint64) {
	d.e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int64
		err := d.e.pool.QueryRow(context.Background(), `SELECT GREATEST(d.last_event_seq,
			COALESCE((SELECT max(stream_seq) FROM document_events e WHERE e.document_id = d.id), 0))
			FROM documents d WHERE d.id = $1`, d.id).Scan(&got)
		if err == nil && uint64(got) >= seq {
			return
		}
		if time.Now().After(deadline) {
			d.e.t.Fatalf("document %s: event %d not projected (at %d, %v)", d.id, seq, got, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitProjected waits until the read model has applied every event the
// log holds for the document so far.
func (d *doc) waitProjected() {
	d.e.t.Helper()
	seq, err := streams.NewLog(d.e.js).LastSeq(context.Background(), d.owner, d.id)
	if err != nil || seq == 0 {
		d.e.t.Fatalf("document %s: last event in the log: %d, %v", d.id, seq, err)
	}
	d.waitSeq(seq)
}

// historyTypes lists the types of a document's history rows.
func (e *env) historyTypes(id string) []string {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT type FROM document_events WHERE document_id = $1 ORDER BY occurred_at, event_id`, id)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		_ = rows.Scan(&typ)
		out = append(out, typ)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func sleep() { time.Sleep(5 * time.Millisecond) }

func itoa(n int) string { return strconv.Itoa(n) }
