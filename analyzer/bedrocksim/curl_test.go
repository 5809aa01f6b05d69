package bedrocksim_test

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/aiprism/prism/analyzer/bedrocksim"
)

// TestCurlCheck runs testdata/curl-check.sh, an independent client (curl's
// own SigV4 and shell checks), against the simulator on a real loopback
// listener.
func TestCurlCheck(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl not installed (.ci/run installs it: apt-get install -y curl)")
	}
	if help, _ := exec.Command(curl, "--help", "all").Output(); !strings.Contains(string(help), "--aws-sigv4") {
		t.Fatal("curl lacks --aws-sigv4 (needs 7.75+; Debian 12 has 7.88)")
	}
	const model = "anthropic.claude-3-haiku-20240307-v1:0"
	sim, err := bedrocksim.New(bedrocksim.Config{
		AccessKey: testKey, SecretKey: testSecret, Region: "us-east-1", Seed: 1,
		Models: []bedrocksim.Model{{ID: model, RequestsPerMinute: 3}},
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "testdata/curl-check.sh", "http://"+ln.Addr().String(), testKey, testSecret, model).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("curl-check.sh: %v", err)
	}
	if st := sim.Stats().Models[model]; st.Throttles["requests"] != 1 {
		t.Errorf("stats = %+v, want one request throttle", st)
	}
}
