package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/testenv/workspace"
)

// weedScript builds SeaweedFS's weed once per version into the user cache;
// with --check it only prints the binary's path, or fails saying how to
// build it. .ci/run builds it before make test.
const weedScript = "scripts/build-weed.sh"

// WeedS3Config starts a real S3 server, SeaweedFS (`weed mini`: master,
// volume, filer and S3 gateway in one process), on loopback ports in a
// temporary directory, with TestBucket and the credentials of S3ConfigAt,
// and returns the blob.Config that reaches it. It is for behaviour that
// depends on the server: multipart uploads, server-side encryption. It
// stops when the test ends. A weed not built yet fails the test with the
// command that builds it.
func WeedS3Config(t testing.TB) blob.Config {
	t.Helper()
	bin, err := weedBinary()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	dir := t.TempDir()
	const identities = `{"identities":[{"name":"prism-test","credentials":[{"accessKey":"test","secretKey":"test"}],"actions":["Admin","Read","List","Tagging","Write"]}]}`
	s3json := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(s3json, []byte(identities), 0o600); err != nil {
		t.Fatalf("testenv: weed: %v", err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatalf("testenv: weed: %v", err)
	}
	s3port := freePort(t)
	args := []string{"mini", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-s3.config=" + s3json, "-s3.port=" + strconv.Itoa(s3port),
		// Every other listener on a port of its own, so that tests in
		// parallel processes do not collide; the rest off.
		"-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
		"-master.volumeSizeLimitMB=64", "-volume.max=8"}
	for _, flag := range []string{"master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
		"filer.port", "filer.port.grpc", "s3.port.grpc", "debug.port"} {
		args = append(args, fmt.Sprintf("-%s=%d", flag, freePort(t)))
	}
	logPath := filepath.Join(dir, "weed.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("testenv: weed: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start weed: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(setupTimeout):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("testenv: weed did not stop within %s, killed", setupTimeout)
		}
	})
	cfg := S3ConfigAt(fmt.Sprintf("http://127.0.0.1:%d", s3port))
	if err := awaitBucket(cfg, exited); err != nil {
		tail, _ := os.ReadFile(logPath)
		if len(tail) > 4000 {
			tail = tail[len(tail)-4000:]
		}
		t.Fatalf("testenv: weed S3 at %s: %v\n%s", cfg.Endpoint, err, tail)
	}
	return cfg
}

// awaitBucket creates TestBucket once the gateway answers: the filer and
// volume server start behind it for a few seconds.
func awaitBucket(cfg blob.Config, exited <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	st, err := blob.New(ctx, cfg)
	if err != nil {
		return err
	}
	for {
		err := st.EnsureBucket(ctx)
		if err == nil {
			return nil
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("weed exited: %w", errors.Join(werr, err))
		case <-ctx.Done():
			return fmt.Errorf("not ready within %s: %w", setupTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// weedBinary asks the build script where the weed binary is, without
// building it.
func weedBinary() (string, error) {
	root, err := workspace.Root()
	if err != nil {
		return "", fmt.Errorf("weed: %w", err)
	}
	script := filepath.Join(root, weedScript)
	out, err := exec.Command("bash", script, "--check").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("weed: %s (build it with: %s)", strings.TrimSpace(string(ee.Stderr)), script)
		}
		return "", fmt.Errorf("weed: %s --check: %w", script, err)
	}
	return strings.TrimSpace(string(out)), nil
}
