// Package natsembed runs a NATS server with JetStream inside the current
// process.
//
// `prism dev` and the tests of every module use it so that they exercise the
// same JetStream semantics as production (persistence, acks, redelivery)
// without an external broker.
package natsembed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Port values with special meaning in Options.Port.
const (
	// RandomPort lets the OS pick a free TCP port.
	RandomPort = 0
	// NoListener disables the TCP listener; clients must connect in-process
	// through (*Server).Connect.
	NoListener = -1
)

// readyTimeout bounds how long Start waits for the server to accept
// clients when ctx has no earlier deadline. JetStream recovery of a large
// store can take a while, so this is generous.
const readyTimeout = 30 * time.Second

// Options configures the embedded server.
type Options struct {
	// Dir is the JetStream store directory. Reusing it across restarts keeps
	// streams, consumers and messages. Required.
	Dir string
	// Host to listen on; "" means 127.0.0.1 so a dev server is not exposed.
	Host string
	// Port to listen on: RandomPort (0) picks a free port, NoListener (-1)
	// serves in-process connections only.
	Port int
	// ServerName identifies the server in JetStream metadata; "" lets the
	// server generate one.
	ServerName string
	// SyncAlways fsyncs every JetStream write (server.Options.SyncAlways).
	// Slower, but no acknowledged message is lost on power failure.
	SyncAlways bool
	// MaxPayload is the largest message the server accepts; 0 keeps the
	// server default (1 MiB). Large documents travel as claim checks in S3.
	MaxPayload int32
	// ConfigFile is a nats-server configuration file whose settings
	// apply (users and permissions: deploy/nats/auth.conf), except those
	// the fields above decide. Variables it references ($NAME) are read
	// from the environment when it is parsed. "" = none: no auth.
	ConfigFile string
}

// Server is a running embedded NATS server.
type Server struct {
	ns       *server.Server
	listener bool
}

// Start starts the server and waits until it accepts connections and
// JetStream is enabled. It fails rather than returning a server without
// JetStream, since every role depends on streams.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("natsembed: Options.Dir (JetStream store directory) is required")
	}
	if opts.Port < NoListener || opts.Port > 65535 {
		return nil, fmt.Errorf("natsembed: Options.Port %d out of range (0 = random, -1 = no listener)", opts.Port)
	}
	sopts := &server.Options{}
	if opts.ConfigFile != "" {
		fo, err := server.ProcessConfigFile(opts.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("natsembed: read %s: %w", opts.ConfigFile, err)
		}
		sopts = fo
	}
	sopts.ServerName = opts.ServerName
	sopts.Host = opts.Host
	sopts.Port = opts.Port
	sopts.JetStream = true
	sopts.StoreDir = opts.Dir
	sopts.SyncAlways = opts.SyncAlways
	if opts.MaxPayload != 0 {
		sopts.MaxPayload = opts.MaxPayload
	}
	// The host process owns signals and logging.
	sopts.NoSigs = true
	sopts.NoLog = true
	if sopts.Host == "" {
		sopts.Host = "127.0.0.1"
	}
	switch opts.Port {
	case RandomPort:
		sopts.Port = server.RANDOM_PORT
	case NoListener:
		sopts.Port = 0
		sopts.DontListen = true
	}

	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("natsembed: configure server (store %s): %w", opts.Dir, err)
	}
	ns.Start()

	wait := readyTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if !ns.ReadyForConnections(wait) {
		ns.Shutdown()
		ns.WaitForShutdown()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("natsembed: waiting for server to be ready: %w", err)
		}
		return nil, fmt.Errorf("natsembed: server not ready for connections after %s (store %s)", wait, opts.Dir)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("natsembed: JetStream failed to start (store %s); check the directory is writable", opts.Dir)
	}
	return &Server{ns: ns, listener: !sopts.DontListen}, nil
}

// ClientURL returns the nats:// URL clients dial, or "" when the server has
// no listener.
func (s *Server) ClientURL() string {
	if !s.listener {
		return ""
	}
	return s.ns.ClientURL()
}

// Connect opens a client connection, in-process when there is no listener.
// Extra options are applied after the defaults so callers can override
// them (name, reconnect behaviour, ...).
func (s *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	url := s.ClientURL()
	if !s.listener {
		// The URL is only used for bookkeeping when InProcessServer is set.
		url = nats.DefaultURL
		opts = append([]nats.Option{nats.InProcessServer(s.ns)}, opts...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("natsembed: connect to embedded server: %w", err)
	}
	return nc, nil
}

// NATSServer exposes the underlying server for advanced uses (monitoring,
// account inspection). Callers must not shut it down directly.
func (s *Server) NATSServer() *server.Server { return s.ns }

// Shutdown stops the server and waits until it has flushed and closed the
// JetStream store, so the same Dir can be reopened immediately.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}
