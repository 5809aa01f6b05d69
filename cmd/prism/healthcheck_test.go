package main

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/rs/zerolog"
)

// serveMetrics runs the roles' real metrics listener on a free port and
// returns its address as a wildcard listen address, as a container sets it.
func serveMetrics(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	addr := net.JoinHostPort("0.0.0.0", strconv.Itoa(port))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- obs.ServeMetrics(ctx, addr, obs.NewRegistry(), zerolog.Nop()) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", loopback(addr))
		if err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics listener on %s never came up: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealthcheck(t *testing.T) {
	metrics := serveMetrics(t)
	closed := func() string { // a port nothing listens on
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // empty: passes
	}{
		{"role metrics healthz", nil, map[string]string{"METRICS_ADDR": metrics}, ""},
		{"api not listening", nil, map[string]string{"METRICS_ADDR": metrics, "API_ADDR": closed}, "http://" + closed + "/readyz"},
		{"url given, not found", []string{"http://" + loopback(metrics) + "/nope"}, nil, "status 404"},
		{"nothing to check", nil, nil, "nothing to check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"healthcheck"}, tc.args...), config.MapEnv(tc.env), &out, &errOut)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("healthcheck failed: %v", err)
			case tc.wantErr == "" && !strings.Contains(out.String(), "ok http://"+loopback(metrics)+"/healthz"):
				t.Fatalf("healthcheck printed %q, want the URL it checked", out.String())
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("healthcheck error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:9100":   "127.0.0.1:9100",
		":8080":          "127.0.0.1:8080",
		"[::]:8080":      "127.0.0.1:8080",
		"10.0.0.7:9100":  "10.0.0.7:9100",
		"localhost:8787": "localhost:8787",
	} {
		if got := loopback(in); got != want {
			t.Errorf("loopback(%q) = %q, want %q", in, got, want)
		}
	}
}
