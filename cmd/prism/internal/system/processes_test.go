package system_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestRolesRunAsSeparateProcessesAndShareTheWork runs every role as its own
// `prism <role>` process against NATS, PostgreSQL and S3 given by the
// environment, with two extractors and two analyzers: documents uploaded
// over HTTP and published straight to the NATS intake subject all reach
// an assessment, and both processes of each scaled role do part of the work.
func TestRolesRunAsSeparateProcessesAndShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts eight processes")
	}
	bin := testenv.PrismBinary(t)
	infra := startDev(t, t.TempDir(), testenv.Postgres(t), map[string]string{
		"PRISM_DEV_ROLES": "none", "PRISM_DEV_NATS_PORT": "0",
	})
	env := map[string]string{"NATS_URL": infra.NATSURL, "API_AUTH": "dev", "LOG_LEVEL": "info", "LOG_FORMAT": "json"}
	for k, v := range infra.RoleEnv {
		env[k] = v
	}
	var procs []*system.Process
	start := func(role string) *system.Process {
		p, err := system.StartProcess(bin, role, env)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		return p
	}
	api := start("api")
	for _, role := range []string{"persist", "ingest", "extractor", "extractor", "analyzer", "analyzer", "notifier"} {
		start(role)
	}
	defer func() {
		for _, p := range procs {
			if _, err := p.Stop(20 * time.Second); err != nil {
				t.Errorf("%s: %v", p.Role, err)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := api.WaitReady(ctx, httpGet); err != nil {
		t.Fatal(err)
	}
	// Every consumer is bound before the first upload, so that the work
	// can be shared from the start.
	for _, p := range procs {
		for p.Role != "api" && !strings.Contains(p.Output(), "consumer started") {
			if done, err := p.Exited(); done {
				t.Fatalf("%s exited: %v\n%s", p.Role, err, p.Output())
			}
			if ctx.Err() != nil {
				t.Fatalf("%s never started its consumer:\n%s", p.Role, p.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	base := "http://" + api.APIAddr

	// Twenty documents over HTTP, followed to their assessment.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := upload(t, base, fmt.Sprintf("contract-%d.txt", i), fmt.Sprintf("%s\nCopy %d.\n", contract, i))
			events := followSSE(t, base, id, "")
			if len(events) == 0 || events[len(events)-1].event != "analyzed" {
				t.Errorf("document %s did not reach its assessment: %+v", id, events)
			}
		}()
	}
	wg.Wait()

	// One document published straight to NATS by another system.
	nc, err := nats.Connect(infra.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	msg := &nats.Msg{Subject: streams.IntakeSubject("dev"), Data: []byte(contract), Header: nats.Header{}}
	msg.Header.Set(ingest.HeaderFilename, "from-nats.txt")
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("other-system-42"))
	if err != nil {
		t.Fatal(err)
	}
	waitStored(t, base, ingest.IntakeDocumentID(ack.Sequence, "other-system-42"))

	// Both processes of each scaled role did part of the work.
	for _, role := range []string{"extractor", "analyzer"} {
		for _, p := range procs {
			if p.Role != role {
				continue
			}
			word := map[string]string{"extractor": `"message":"extracted"`, "analyzer": `"message":"analyzed"`}[role]
			if n := strings.Count(p.Output(), word); n == 0 {
				t.Errorf("one %s process handled no document: the work is not shared\n%s", role, p.Output())
			}
		}
	}
}

// TestRoleStopsOnBadConfigNamingTheVariable: a bad value stops the process
// at start with a line naming the variable and what is expected.
func TestRoleStopsOnBadConfigNamingTheVariable(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testenv.PrismBinary(t)
	cmd := exec.Command(bin, "api")
	cmd.Env = []string{"API_AUTH=bogus", "EXTRACTOR_CONCURRENCY=x", "DATABASE_URL=postgres://localhost/x", "S3_BUCKET=b", "NATS_URL=nats://127.0.0.1:1"}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the api started with a bad configuration")
	}
	if !strings.Contains(string(out), "API_AUTH: expected one of dev, token") {
		t.Fatalf("the error does not name the variable:\n%s", out)
	}

	// Dev auth where others reach the API: refused, naming both variables.
	cmd = exec.Command(bin, "api")
	cmd.Env = []string{"API_AUTH=dev", "API_ADDR=0.0.0.0:0", "DATABASE_URL=postgres://localhost/x", "S3_BUCKET=b", "NATS_URL=nats://127.0.0.1:1"}
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "API_AUTH: expected token, or API_ADDR on loopback") || !strings.Contains(string(out), "API_ADDR=0.0.0.0:0") {
		t.Fatalf("dev auth on a public address: %v\n%s", err, out)
	}
}
