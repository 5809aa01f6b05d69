package system_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	// The extractor re-executes this binary as its sandboxed worker.
	system.ServeWorkerIfAsked()
	testenv.Main(m)
}

const contract = `SUPPLY AGREEMENT
1. Liability. The Customer accepts unlimited liability for all direct and indirect damages.
2. Indemnity. The Customer shall indemnify the Supplier against any claims brought by third parties.
`

// devSystem is a running `prism dev` in this process.
type devSystem struct {
	*system.Dev
	stop func()
}

// startDev starts the whole system on varDir. dsn "" lets it start its own
// PostgreSQL under varDir, as `make run` does.
func startDev(t *testing.T, varDir, dsn string, extra ...map[string]string) *devSystem {
	t.Helper()
	return startDevLogging(t, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), varDir, dsn, extra...)
}

// startDevLogging is startDev logging to log.
func startDevLogging(t *testing.T, log zerolog.Logger, varDir, dsn string, extra ...map[string]string) *devSystem {
	t.Helper()
	env := map[string]string{
		"PRISM_VAR_DIR":       varDir,
		"PRISM_DEV_NATS_PORT": "-1",
		"PRISM_DEV_S3_ADDR":   "127.0.0.1:0",
		"PRISM_DEV_PG_FSYNC":  "false",
		"API_ADDR":            "127.0.0.1:0",
		"BEDROCKSIM_SPEED":    "0",
		"DATABASE_URL":        dsn,
	}
	for _, e := range extra {
		for k, v := range e {
			env[k] = v
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := system.StartDev(ctx, config.MapEnv(env), obs.NewRegistry(), log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ds := &devSystem{Dev: dev}
	stopped := false
	ds.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := dev.Wait(); err != nil {
			t.Errorf("roles stopped with: %v", err)
		}
		dev.Close()
	}
	t.Cleanup(ds.stop)
	return ds
}

func upload(t *testing.T, api, name, content string) string {
	t.Helper()
	return uploadWith(t, http.DefaultClient, api, name, content)
}

// uploadWith uploads with client (one that authenticates, say).
func uploadWith(t *testing.T, client *http.Client, api, name, content string) string {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	_, _ = fw.Write([]byte(content))
	_ = mw.Close()
	resp, err := client.Post(api+"/api/v1/documents", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &out) != nil || out.ID == "" {
		t.Fatalf("upload: %d %s", resp.StatusCode, raw)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/documents/"+out.ID {
		t.Fatalf("Location = %q", loc)
	}
	return out.ID
}

type sseEvent struct {
	id, event string
	data      streams.Event
}

// followSSE reads a document's event stream until it ends.
func followSSE(t *testing.T, api, id, lastEventID string) []sseEvent {
	t.Helper()
	return followSSEWith(t, http.DefaultClient, api, id, lastEventID)
}

// followSSEWith is followSSE with client.
func followSSEWith(t *testing.T, client *http.Client, api, id, lastEventID string) []sseEvent {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, api+"/api/v1/documents/"+id+"/events", nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	var events []sseEvent
	readSSE(resp.Body, func(id, event string, data []byte) {
		ev := sseEvent{id: id, event: event}
		if err := json.Unmarshal(data, &ev.data); err != nil {
			t.Errorf("bad SSE data %q: %v", data, err)
		}
		events = append(events, ev)
	})
	return events
}

// readSSE calls fn with each event of an SSE stream until it ends.
func readSSE(r io.Reader, fn func(id, event string, data []byte)) {
	var id, event string
	var data []byte
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = []byte(line[6:])
		case line == "" && event != "":
			fn(id, event, data)
			id, event, data = "", "", nil
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if v != nil {
		_ = json.Unmarshal(raw, v)
	}
	return resp.StatusCode
}

type docView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Score    *int   `json:"score"`
	Timeline []struct {
		Type string `json:"type"`
	} `json:"timeline"`
	Assessment *struct {
		Score  int             `json:"score"`
		Model  string          `json:"model"`
		Result json.RawMessage `json:"result"`
	} `json:"assessment"`
}

// waitStored polls the API until the read model shows the document analyzed.
func waitStored(t *testing.T, api, id string) docView {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var d docView
		if code := getJSON(t, api+"/api/v1/documents/"+id, &d); code == http.StatusOK && d.Status == "analyzed" && d.Assessment != nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %s not stored as analyzed: %+v", id, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUploadTravelsEveryStageToAStoredAssessment(t *testing.T) {
	dsn := testenv.Postgres(t)
	dev := startDev(t, t.TempDir(), dsn)
	id := upload(t, dev.APIURL, "contract.txt", contract)

	events := followSSE(t, dev.APIURL, id, "")
	var kinds []string
	for _, e := range events {
		if e.event != string(streams.Progress) {
			kinds = append(kinds, e.event)
		}
		if e.id == "" || e.data.Subject != id {
			t.Fatalf("event without id or of another document: %+v", e)
		}
	}
	if strings.Join(kinds, ",") != "uploaded,extracted,analyzed" {
		t.Fatalf("SSE sequence %v, want uploaded, extracted, analyzed", kinds)
	}

	// Resume after the first event: exactly the rest, no loss, no repeat.
	resumed := followSSE(t, dev.APIURL, id, events[0].id)
	if len(resumed) != len(events)-1 || resumed[0].id != events[1].id {
		t.Fatalf("resume after %s gave %d events, want %d", events[0].id, len(resumed), len(events)-1)
	}

	d := waitStored(t, dev.APIURL, id)
	if d.Score == nil || *d.Score != d.Assessment.Score || *d.Score < 25 {
		t.Fatalf("stored score %v / assessment %+v", d.Score, d.Assessment)
	}
	if len(d.Timeline) < 3 {
		t.Fatalf("timeline has %d entries", len(d.Timeline))
	}

	// The same, straight from PostgreSQL.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var status string
	var score, assessments int
	if err := conn.QueryRow(context.Background(), `SELECT status, score FROM documents WHERE id = $1`, id).Scan(&status, &score); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM assessments WHERE document_id = $1`, id).Scan(&assessments); err != nil {
		t.Fatal(err)
	}
	if status != "analyzed" || score != *d.Score || assessments != 1 {
		t.Fatalf("PostgreSQL: status %s score %d assessments %d", status, score, assessments)
	}

	// Health.
	var ready struct {
		Status string
		Checks map[string]string
	}
	if code := getJSON(t, dev.APIURL+"/readyz", &ready); code != http.StatusOK || ready.Checks["nats"] != "ok" || ready.Checks["postgres"] != "ok" || ready.Checks["s3"] != "ok" {
		t.Fatalf("readyz %d %+v", code, ready)
	}
	if code := getJSON(t, dev.APIURL+"/healthz", nil); code != http.StatusOK {
		t.Fatalf("healthz %d", code)
	}
}

func TestDuplicateEventsChangeNothing(t *testing.T) {
	dsn := testenv.Postgres(t)
	dev := startDev(t, t.TempDir(), dsn)
	id := upload(t, dev.APIURL, "contract.txt", contract)
	followSSE(t, dev.APIURL, id, "")
	waitStored(t, dev.APIURL, id)
	callsBefore := modelCalls(dev)

	ctx := context.Background()
	js := dev.Infra.JS
	stream, _ := js.Stream(ctx, streams.DocsStream)
	msg, err := stream.GetLastMsgForSubject(ctx, streams.DocSubject("dev", id, streams.Uploaded))
	if err != nil {
		t.Fatal(err)
	}
	uploaded, err := streams.ParseEvent(msg.Subject, msg.Data)
	if err != nil {
		t.Fatal(err)
	}
	// A duplicate publish (same Nats-Msg-Id): dropped by JetStream.
	if err := streams.NewPublisher(js, "/test").Publish(ctx, uploaded); err != nil {
		t.Fatal(err)
	}
	// The same event delivered again (stored a second time without a
	// message id, as a redelivery after the dedupe window would be).
	if _, err := js.Publish(ctx, msg.Subject, msg.Data); err != nil {
		t.Fatal(err)
	}
	// Wait until every consumer has handled everything.
	for _, c := range []string{"extractor", "analyzer", "persist"} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			cons, err := js.Consumer(ctx, streams.DocsStream, c)
			if err != nil {
				t.Fatal(err)
			}
			info, err := cons.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("consumer %s did not catch up: %+v", c, info)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	count := func(t2 streams.EventType) int {
		n := 0
		f, _ := streams.Follow(ctx, js, streams.DocSubject("dev", id, t2), 0)
		defer f.Close()
		for {
			if _, err := f.Next(ctx, 300*time.Millisecond); err != nil {
				return n
			}
			n++
		}
	}
	if u, e, a := count(streams.Uploaded), count(streams.Extracted), count(streams.Analyzed); u != 2 || e != 1 || a != 1 {
		t.Fatalf("stream holds uploaded %d (want 2: one duplicate redelivered), extracted %d, analyzed %d (want 1 each)", u, e, a)
	}
	if calls := modelCalls(dev); calls != callsBefore {
		t.Fatalf("the model was called %d more times", calls-callsBefore)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT type, count(*) FROM document_events WHERE document_id = $1 GROUP BY type`, id)
	if err != nil {
		t.Fatal(err)
	}
	perType, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
		T string
		N int
	}, error) {
		var v struct {
			T string
			N int
		}
		return v, r.Scan(&v.T, &v.N)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range perType {
		if v.T != string(streams.Progress) && v.N != 1 {
			t.Fatalf("%d history entries of type %s", v.N, v.T)
		}
	}
	var assessments int
	_ = conn.QueryRow(ctx, `SELECT count(*) FROM assessments WHERE document_id = $1`, id).Scan(&assessments)
	if assessments != 1 {
		t.Fatalf("%d assessments", assessments)
	}
}

func modelCalls(dev *devSystem) int64 {
	var n int64
	for _, m := range dev.Sim.Stats().Models {
		n += m.Requests
	}
	return n
}

func TestRestartFindsEarlierDocuments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL twice")
	}
	// Not t.TempDir, whose parent only its owner may enter: when the tests
	// run as root, PostgreSQL runs as the postgres user. The data
	// directory itself is private (0700): prism dev must cope, as `make
	// run` must with a ./var made by hand.
	varDir, err := os.MkdirTemp("", "prism-dev-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(varDir) })
	dev := startDev(t, varDir, "") // its own PostgreSQL under varDir, as make run
	id := upload(t, dev.APIURL, "contract.txt", contract)
	followSSE(t, dev.APIURL, id, "")
	before := waitStored(t, dev.APIURL, id)
	dev.stop()

	again := startDev(t, varDir, "")
	after := waitStored(t, again.APIURL, id)
	if *after.Score != *before.Score || after.Assessment.Model != before.Assessment.Model {
		t.Fatalf("after restart: %+v, before: %+v", after, before)
	}
	// The event log survived too: the SSE stream replays the whole history.
	if events := followSSE(t, again.APIURL, id, ""); len(events) == 0 || events[len(events)-1].event != "analyzed" {
		t.Fatalf("replay after restart: %+v", events)
	}
}

// TestReadmeWalkthrough runs the README's walkthrough block with bash and
// curl against a running system, exactly as written (API points it at the
// test's port).
func TestReadmeWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not installed (.ci/run installs it: apt-get install -y curl)")
	}
	root, _ := filepath.Abs("../../../..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- walkthrough:begin -->\\s*```sh\\n(.*?)```\\s*<!-- walkthrough:end -->").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no walkthrough block")
	}
	dev := startDev(t, t.TempDir(), testenv.Postgres(t))
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", string(m[1]))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "API="+dev.APIURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	for _, want := range []string{"event: uploaded", "event: extracted", "event: analyzed", `"status":"analyzed"`, `"risk_factors"`} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
}

// Every model answers 503 for a while: documents uploaded meanwhile wait,
// their status says they are queued for model capacity, and all are
// analyzed once the models serve again (after the breakers' open period);
// none fails.
func TestDocumentsWaitOutAModelOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a breaker's open period")
	}
	dev := startDev(t, t.TempDir(), testenv.Postgres(t))
	if err := dev.Sim.SetFaults("*", bedrocksim.Faults{Storm: &bedrocksim.Storm{Kind: "unavailable", Seconds: 5}}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, upload(t, dev.APIURL, fmt.Sprintf("contract-%d.txt", i), fmt.Sprintf("%s\nCopy %d.\n", contract, i)))
	}
	events := followSSE(t, dev.APIURL, ids[0], "")
	queued := false
	for _, e := range events {
		var p streams.ProgressData
		if e.event == string(streams.Progress) && json.Unmarshal(e.data.Data, &p) == nil && p.Status == "queued" {
			queued = true
		}
	}
	if len(events) == 0 {
		t.Fatal("the event stream of a document uploaded during the outage is empty")
	}
	if !queued || events[len(events)-1].event != string(streams.Analyzed) {
		t.Fatalf("events of a document uploaded during the outage: queued %v, last %q; want queued, then analyzed", queued, events[len(events)-1].event)
	}
	for _, id := range ids {
		waitStored(t, dev.APIURL, id)
	}
	var unavailable int64
	for _, m := range dev.Sim.Stats().Models {
		unavailable += m.Errors["ServiceUnavailableException"]
	}
	if unavailable == 0 {
		t.Fatal("the outage never hit a call")
	}
}
