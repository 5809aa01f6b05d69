package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/aiprism/prism/platform/config"
)

// healthTimeout bounds the whole check: a container runtime kills a
// check that outlasts its own timeout and counts it as failed anyway.
const healthTimeout = 3 * time.Second

// runHealthcheck is the image's HEALTHCHECK (its base has no shell and no
// curl): it GETs each URL given, or else the process's own endpoints found
// from its environment, and fails unless every one answers 200.
func runHealthcheck(ctx context.Context, args []string, env config.Getenv, stdout io.Writer) error {
	urls := args
	if len(urls) == 0 {
		urls = healthURLs(env)
	}
	if len(urls) == 0 {
		return errors.New("healthcheck: nothing to check: set METRICS_ADDR, API_ADDR or BEDROCKSIM_ADDR, or name a URL")
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	var errs []error
	for _, u := range urls {
		if err := getOK(ctx, u); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(stdout, "ok", u)
	}
	return errors.Join(errs...)
}

// healthURLs are the endpoints a role serves: /healthz beside the metrics
// (every role), the API's /readyz, which checks NATS, PostgreSQL and S3,
// and the simulator's /healthz.
func healthURLs(env config.Getenv) []string {
	var urls []string
	for _, e := range []struct{ name, path string }{
		{"METRICS_ADDR", "/healthz"},
		{"API_ADDR", "/readyz"},
		{"BEDROCKSIM_ADDR", "/healthz"},
	} {
		if addr := env(e.name); addr != "" {
			urls = append(urls, "http://"+loopback(addr)+e.path)
		}
	}
	return urls
}

// loopback turns a listen address into one to dial from the same host: a
// wildcard host (0.0.0.0, ::, none) becomes 127.0.0.1.
func loopback(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func getOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck %s: status %d", url, resp.StatusCode)
	}
	return nil
}
