package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aiprism/prism/platform/jsbind"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	DocsStream   = "DOCS"
	DLQStream    = "DLQ"
	IntakeStream = "INTAKE"
)

// Topology sizes the streams for a deployment: one embedded node or a
// cluster with R3 streams.
type Topology struct {
	Replicas   int           // 1 on a single node, 3 in a cluster
	MaxAge     time.Duration // how long the DOCS log is replayable
	MaxBytes   int64         // cap on the DOCS stream; -1 = unlimited
	Duplicates time.Duration // window in which JetStream drops a repeated Nats-Msg-Id
	// MaxConsumers bounds DOCS consumers: the stages' durables plus one
	// short-lived ordered consumer per open SSE stream. The server's own
	// default (1,000) would cap concurrent SSE streams.
	MaxConsumers int
}

// DefaultTopology suits one node.
func DefaultTopology() Topology {
	return Topology{Replicas: 1, MaxAge: 90 * 24 * time.Hour, MaxBytes: 10 << 30, Duplicates: 10 * time.Minute, MaxConsumers: 50_000}
}

// DocsConfig is the stream of every document event, the system's replayable log.
func DocsConfig(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:         DocsStream,
		Description:  "document lifecycle events: " + DocRoot + ".<owner>.<document>.<event>",
		Subjects:     []string{DocRoot + ".>"},
		Retention:    jetstream.LimitsPolicy,
		Storage:      jetstream.FileStorage,
		Replicas:     t.Replicas,
		MaxAge:       t.MaxAge,
		MaxBytes:     t.MaxBytes,
		MaxMsgSize:   1 << 20, // events carry references, never document bytes
		Discard:      jetstream.DiscardOld,
		Duplicates:   t.Duplicates,
		AllowDirect:  true,
		MaxConsumers: t.MaxConsumers,
	}
}

// DLQConfig captures the advisories JetStream emits when a DOCS consumer
// gives up on a message (max deliveries) or a handler terminates one. The
// advisory names the stream sequence, so the original event can be read
// back and replayed once the cause is fixed.
func DLQConfig(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DLQStream,
		Description: "dead letters: max-deliveries and terminated advisories of DOCS consumers",
		Subjects: []string{
			"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + DocsStream + ".*",
			"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED." + DocsStream + ".*",
		},
		Retention: jetstream.LimitsPolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  t.Replicas,
		MaxAge:    t.MaxAge,
		MaxBytes:  1 << 30,
		Discard:   jetstream.DiscardOld,
	}
}

// IntakeConfig is the work queue of documents published straight to NATS
// by other systems on prism.intake.<owner>: the message body is the
// document (so at most the server's max_payload), headers carry its name.
// The ingest role stores each one and emits document.uploaded.
func IntakeConfig(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        IntakeStream,
		Description: "documents published by other systems: " + IntakeRoot + ".<owner>",
		Subjects:    []string{IntakeRoot + ".*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    t.Replicas,
		MaxAge:      7 * 24 * time.Hour,
		MaxBytes:    t.MaxBytes,
		Discard:     jetstream.DiscardNew, // refuse new work rather than drop accepted work
		Duplicates:  t.Duplicates,
	}
}

// IntakeSubject is where other systems publish a document for owner.
func IntakeSubject(owner string) string { return IntakeRoot + "." + owner }

// StreamConfigs are the system's streams, sized by t.
func StreamConfigs(t Topology) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{DocsConfig(t), DLQConfig(t), IntakeConfig(t), ChatConfig(t)}
}

// Durables are every durable consumer a role binds to, on DOCS, INTAKE
// and CHAT.
func Durables() []Consumer {
	return []Consumer{ExtractorConsumer, AnalyzerConsumer, PersistConsumer, IntakeConsumer, NotifierConsumer, ChatConsumer, PersistChatConsumer}
}

// Setup creates or updates the streams (StreamConfigs) and the durable
// consumers (Durables): what `prism setup` does on the bus, with admin
// rights. It is idempotent and safe to run from several processes at
// once; a stream whose configuration already matches is left alone, so a
// repeated setup does not disturb the consumers bound to it.
func Setup(ctx context.Context, js jetstream.JetStream, t Topology) error {
	if err := EnsureStreams(ctx, js, t); err != nil {
		return err
	}
	for _, c := range Durables() {
		if _, err := c.Create(ctx, js); err != nil {
			return err
		}
	}
	return nil
}

// EnsureStreams creates or updates DOCS, DLQ, INTAKE and CHAT (Setup does,
// with the consumers).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, t Topology) error {
	for _, cfg := range StreamConfigs(t) {
		if err := ensureStream(ctx, js, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err = js.CreateStream(ctx, want); !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return err
		}
		s, err = js.Stream(ctx, want.Name) // another role created it first
	}
	if err != nil {
		return err
	}
	if sameSettings(s.CachedInfo().Config, want) {
		return nil
	}
	_, err = js.UpdateStream(ctx, want)
	return err
}

// sameSettings compares the settings this package decides; a zero value
// leaves the server's default, whatever it is.
func sameSettings(have, want jetstream.StreamConfig) bool {
	orDefault := func(h, w int64) bool { return w == 0 || h == w }
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention && have.Storage == want.Storage && have.Replicas == want.Replicas &&
		have.MaxAge == want.MaxAge && have.MaxBytes == want.MaxBytes && have.Discard == want.Discard &&
		have.AllowDirect == want.AllowDirect &&
		orDefault(int64(have.MaxMsgSize), int64(want.MaxMsgSize)) &&
		orDefault(int64(have.Duplicates), int64(want.Duplicates)) &&
		orDefault(int64(have.MaxConsumers), int64(want.MaxConsumers))
}

// Consumer describes one durable pull consumer on DOCS. Any number of
// processes bind to the same durable and share its work.
type Consumer struct {
	Name    string
	Stream  string      // empty = DOCS
	Filters []EventType // empty = every event
	AckWait time.Duration
	// MaxDeliver: deliveries before the runner gives up (0 or less: no
	// limit); the server allows one more (see serverMaxDeliver).
	MaxDeliver int
	// MaxAge: the runner gives up on a transient failure or a wait of an
	// event older than this, whatever its delivery count (0: no limit).
	MaxAge time.Duration
	// MaxAckPending bounds the messages in flight across all processes.
	MaxAckPending int
	// PublishFailures: when a handler gives up on a document, publish a
	// document.failed event for it (the stages do; projectors do not).
	PublishFailures bool
	Stage           Stage
}

// The stage consumers. AckWait is kept short and long work sends InProgress
// heartbeats, so a crashed worker's message is redelivered quickly.
var (
	ExtractorConsumer = Consumer{Name: "extractor", Filters: []EventType{Uploaded}, AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1000, PublishFailures: true, Stage: StageExtract}
	// The analyzer waits for model capacity by redelivery with delay, as
	// often as it takes: a count of deliveries would fail a document for
	// waiting in a long queue. It gives up by age instead: after a day of
	// waits or retries, the document fails with the reason.
	AnalyzerConsumer = Consumer{Name: "analyzer", Filters: []EventType{Extracted}, AckWait: 60 * time.Second, MaxDeliver: -1, MaxAge: 24 * time.Hour, MaxAckPending: 5000, PublishFailures: true, Stage: StageAnalyze}
	PersistConsumer  = Consumer{Name: "persist", AckWait: 30 * time.Second, MaxDeliver: 20, MaxAckPending: 10000, Stage: StagePersist}
	IntakeConsumer   = Consumer{Name: "ingest", Stream: IntakeStream, AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 1000, Stage: StageIngest}
	NotifierConsumer = Consumer{Name: "notifier", Filters: []EventType{Analyzed, Failed}, AckWait: 30 * time.Second, MaxDeliver: 10, MaxAckPending: 1000, Stage: StageNotify}
)

// Config returns the JetStream consumer configuration.
func (c Consumer) Config() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       c.Name,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    serverMaxDeliver(c.MaxDeliver),
		MaxAckPending: c.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	filter := TypeFilter
	if c.Stream == ChatStream {
		filter = ChatTypeFilter
	}
	switch len(c.Filters) {
	case 0:
	case 1:
		cfg.FilterSubject = filter(c.Filters[0])
	default:
		for _, f := range c.Filters {
			cfg.FilterSubjects = append(cfg.FilterSubjects, filter(f))
		}
	}
	return cfg
}

// serverMaxDeliver is the server's limit for a runner that gives up at
// delivery n: one more, so that a last delivery cut short by a shutdown
// (retried, never failed) is delivered again and judged by the runner. The
// server's limit stays as the backstop for a message that kills its
// process every time: it then goes to the DLQ.
func serverMaxDeliver(n int) int {
	if n <= 0 {
		return n
	}
	return n + 1
}

// StreamName is the stream c consumes.
func (c Consumer) StreamName() string {
	if c.Stream == "" {
		return DocsStream
	}
	return c.Stream
}

// Create creates or updates the durable consumer on its stream; it needs
// JetStream admin rights (prism setup, tests).
func (c Consumer) Create(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, c.StreamName(), c.Config())
	if err != nil {
		return nil, fmt.Errorf("create consumer %s/%s: %w", c.StreamName(), c.Name, err)
	}
	return cons, nil
}

// Bind looks the durable consumer up, as a role does: it must exist.
func (c Consumer) Bind(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	return jsbind.Consumer(ctx, js, c.StreamName(), c.Name)
}
