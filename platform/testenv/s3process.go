package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/blob"
)

// s3ChildEnv, set to a data directory, makes Main serve a local S3
// endpoint there instead of running tests: it is how S3ProcessConfig runs
// the store in a process of its own.
const s3ChildEnv = "PRISM_TESTENV_S3_CHILD_DIR"

// S3ProcessConfig is S3Config with the endpoint in a separate process: the
// test binary itself, run again. Tests that measure their own process's
// memory need it, since an in-process store holds what it receives in the
// same heap. The package's TestMain must call Main. The process stops when
// the test ends, or when the test binary dies (it serves until its stdin
// closes).
func S3ProcessConfig(t testing.TB) blob.Config {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), s3ChildEnv+"="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("testenv: S3 process: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("testenv: S3 process: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start S3 process: %v", err)
	}
	url, drained, err := readEndpoint(stdout, setupTimeout)
	if err != nil {
		_ = cmd.Process.Kill()
		<-drained
		_ = cmd.Wait()
		t.Fatalf("testenv: S3 process (does TestMain call testenv.Main?): %v\n%s", err, stderr.Bytes())
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		if err := waitOrKill(cmd, drained, setupTimeout); err != nil {
			t.Errorf("testenv: stop S3 process: %v\n%s", err, stderr.Bytes())
		}
	})
	return S3ConfigAt(url)
}

// S3ConfigAt is the blob.Config of a local S3 endpoint at url serving
// TestBucket with SSE required.
func S3ConfigAt(url string) blob.Config {
	return blob.Config{
		Endpoint:        url,
		Region:          "us-east-1",
		Bucket:          TestBucket,
		AccessKeyID:     "test",
		SecretAccessKey: "test",
		UsePathStyle:    true,
		SSE:             blob.SSEAES256,
	}
}

// readEndpoint reads the child's first line, its endpoint URL, and then
// keeps draining its output so it never blocks on a full pipe. drained is
// closed once the output ends; cmd.Wait must come after it.
func readEndpoint(stdout io.Reader, timeout time.Duration) (url string, drained <-chan struct{}, err error) {
	type result struct {
		line string
		err  error
	}
	first := make(chan result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(stdout)
		line, err := br.ReadString('\n')
		first <- result{strings.TrimSpace(line), err}
		_, _ = io.Copy(io.Discard, br)
	}()
	select {
	case r := <-first:
		if !strings.HasPrefix(r.line, "http://") {
			return "", done, fmt.Errorf("no endpoint announced (first line %q, %v)", r.line, r.err)
		}
		return r.line, done, nil
	case <-time.After(timeout):
		return "", done, fmt.Errorf("no endpoint announced within %s", timeout)
	}
}

// waitOrKill waits for cmd's output to end (drained) and for cmd to exit,
// killing it after timeout. Wait comes last: it closes the output pipe.
func waitOrKill(cmd *exec.Cmd, drained <-chan struct{}, timeout time.Duration) error {
	var killed error
	select {
	case <-drained:
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-drained
		killed = errors.New("did not exit in time, killed")
	}
	return errors.Join(killed, cmd.Wait())
}

// serveS3Child is the child side of S3ProcessConfig: it serves TestBucket
// from dir, announces the endpoint on stdout and stops when stdin closes.
func serveS3Child(dir string) int {
	srv, err := startS3(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv: start S3:", err)
		return 1
	}
	fmt.Println(srv.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stop S3:", err)
		return 1
	}
	return 0
}
