package natsembed_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aiprism/prism/platform/natsembed"
)

func TestRestartKeepsMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		port int
	}{
		{"tcp", natsembed.RandomPort},
		{"in-process", natsembed.NoListener},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			dir := t.TempDir()
			opts := natsembed.Options{Dir: dir, Port: tc.port, ServerName: "test", SyncAlways: true}

			srv := start(ctx, t, opts)
			if tc.port == natsembed.NoListener {
				if u := srv.ClientURL(); u != "" {
					t.Errorf("ClientURL without listener = %q, want empty", u)
				}
			} else if u := srv.ClientURL(); !strings.HasPrefix(u, "nats://127.0.0.1:") || strings.HasSuffix(u, ":-1") {
				t.Errorf("ClientURL = %q, want nats://127.0.0.1:<port>", u)
			}
			js := connect(t, srv)
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "DOCS", Subjects: []string{"docs.>"}}); err != nil {
				t.Fatalf("create stream: %v", err)
			}
			if _, err := js.Publish(ctx, "docs.new", []byte("hello")); err != nil {
				t.Fatalf("publish: %v", err)
			}
			srv.Shutdown()

			srv = start(ctx, t, opts)
			defer srv.Shutdown()
			js = connect(t, srv)
			stream, err := js.Stream(ctx, "DOCS")
			if err != nil {
				t.Fatalf("stream after restart: %v", err)
			}
			msg, err := stream.GetMsg(ctx, 1)
			if err != nil {
				t.Fatalf("get message after restart: %v", err)
			}
			if string(msg.Data) != "hello" || msg.Subject != "docs.new" {
				t.Fatalf("after restart got %q on %q, want hello on docs.new", msg.Data, msg.Subject)
			}
		})
	}
}

func TestStartRequiresDir(t *testing.T) {
	if _, err := natsembed.Start(t.Context(), natsembed.Options{}); err == nil {
		t.Fatal("Start without Dir succeeded")
	}
}

func start(ctx context.Context, t *testing.T, opts natsembed.Options) *natsembed.Server {
	t.Helper()
	srv, err := natsembed.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return srv
}

func connect(t *testing.T, srv *natsembed.Server) jetstream.JetStream {
	t.Helper()
	nc, err := srv.Connect()
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}
