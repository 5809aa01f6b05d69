package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strconv"

	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Intake message headers.
const (
	HeaderFilename      = "Prism-Filename"
	HeaderCorrelationID = "Prism-Correlation-Id"
)

// Config is the ingest configuration, shared by the intake role and the
// API's upload path.
type Config struct {
	MaxBytes    int64
	Concurrency int
}

// ConfigFromEnv reads INGEST_MAX_BYTES and INGEST_CONCURRENCY.
func ConfigFromEnv(l *config.Loader) Config {
	return Config{
		MaxBytes:    l.Int64("INGEST_MAX_BYTES", 50<<20, 1, 4<<30),
		Concurrency: l.Int("INGEST_CONCURRENCY", 4, 1, 256),
	}
}

// IntakeDocumentID derives the document id of an intake message from its
// stream sequence and Nats-Msg-Id, so a redelivery stores and announces
// the same document instead of a second one.
func IntakeDocumentID(streamSeq uint64, msgID string) string {
	sum := sha256.Sum256([]byte(strconv.FormatUint(streamSeq, 10) + "\x00" + msgID))
	return "in" + base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:15])
}

// HandleIntake stores one intake message as a document.
func (s *Service) HandleIntake(ctx context.Context, msg jetstream.Msg) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("intake metadata: %w", err)
	}
	owner := msg.Subject()[len(streams.IntakeRoot)+1:]
	if streams.ValidToken(owner) != nil {
		zerolog.Ctx(ctx).Warn().Str("subject", msg.Subject()).Msg("intake on an invalid owner subject; dropped")
		return streams.Permanentf(streams.ClassBadOwner, "invalid owner in subject %s", msg.Subject())
	}
	h := msg.Headers()
	u := Upload{
		Owner:         owner,
		DocumentID:    IntakeDocumentID(md.Sequence.Stream, h.Get(jetstream.MsgIDHeader)),
		Filename:      h.Get(HeaderFilename),
		ContentType:   h.Get("Content-Type"),
		Size:          int64(len(msg.Data())),
		UploadedBy:    owner,
		Via:           "nats",
		CorrelationID: h.Get(HeaderCorrelationID),
		Body:          bytes.NewReader(msg.Data()),
	}
	if streams.ValidToken(u.CorrelationID) != nil {
		u.CorrelationID = ""
	}
	_, err = s.Accept(ctx, u)
	if errors.Is(err, ErrEmpty) || errors.Is(err, ErrTooLarge) {
		// The document exists for its sender: say why it went no further.
		m := streams.Meta{Owner: owner, DocumentID: u.DocumentID, Run: 1, CorrelationID: u.CorrelationID}
		if u.CorrelationID == "" {
			m.CorrelationID = u.DocumentID
		}
		class := streams.ClassEmpty
		if errors.Is(err, ErrTooLarge) {
			class = streams.ClassTooLarge
		}
		if _, perr := s.pub.Emit(ctx, m, streams.Failed, "", streams.FailedData{Stage: streams.StageIngest, Reason: streams.ClassReason(class), ReasonClass: class}); perr != nil {
			return perr
		}
		return nil
	}
	return err
}

// Deps are what the ingest role works with, opened by its caller.
type Deps struct {
	JS       jetstream.JetStream
	Objects  ObjectStore
	Registry prometheus.Registerer
	Log      zerolog.Logger
}

// Role is the ingest role (documents published to NATS on the intake
// subject): configured, wired, and started by Run. HTTP uploads reach the
// same Service through the API.
type Role struct {
	cfg Config
	d   Deps
}

// NewRole returns the ingest role; it starts nothing until Run.
func NewRole(cfg Config, d Deps) *Role { return &Role{cfg: cfg, d: d} }

// Run consumes the intake stream until ctx ends.
func (r *Role) Run(ctx context.Context) error {
	svc := NewService(r.d.Objects, streams.NewPublisher(r.d.JS, "/prism/ingest"), r.cfg.MaxBytes)
	return streams.RunMessages(ctx, r.d.JS, streams.IntakeConsumer, svc.HandleIntake, streams.RunnerOptions{
		Concurrency: r.cfg.Concurrency,
		Log:         r.d.Log,
		Metrics:     streams.NewRunnerMetrics(r.d.Registry),
	})
}
