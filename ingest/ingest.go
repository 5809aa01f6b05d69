// Package ingest accepts documents, stores their bytes in the claim-check
// store and announces them with document.uploaded. The HTTP API calls it for
// uploads; the ingest role runs it for documents published straight to NATS
// on the intake subject.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/streams"
	"github.com/rs/zerolog"
)

// ObjectStore is the part of the claim-check store ingest needs.
type ObjectStore interface {
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (blob.PutResult, error)
}

// ErrTooLarge is returned when a document exceeds the size limit.
var ErrTooLarge = errors.New("document exceeds the size limit")

// ErrEmpty is returned for a zero-byte document.
var ErrEmpty = errors.New("document is empty")

// Service stores documents and emits document.uploaded.
type Service struct {
	store    ObjectStore
	pub      *streams.Publisher
	maxBytes int64
	now      func() time.Time
}

// NewService returns a Service accepting documents up to maxBytes.
func NewService(store ObjectStore, pub *streams.Publisher, maxBytes int64) *Service {
	return &Service{store: store, pub: pub, maxBytes: maxBytes, now: time.Now}
}

// MaxBytes is the size limit.
func (s *Service) MaxBytes() int64 { return s.maxBytes }

// Upload is one document to accept.
type Upload struct {
	Owner         string
	DocumentID    string // empty = a new id; intake derives it from the message id so redelivery is idempotent
	Filename      string
	ContentType   string // declared by the client; a hint only, the extractor decides by content
	Size          int64  // -1 when unknown (streamed)
	UploadedBy    string
	Via           string // http or nats
	CorrelationID string
	Body          io.Reader
	// MaxBytes lowers the service's limit for this upload (the API's own
	// limit); 0 keeps it.
	MaxBytes int64
}

// Accept stores the document's bytes and emits document.uploaded. It
// returns only after both the object and the event are durable, so a 202 to
// the client means the document will be processed.
func (s *Service) Accept(ctx context.Context, u Upload) (*streams.Event, error) {
	if u.DocumentID == "" {
		u.DocumentID = streams.NewID()
	}
	if u.CorrelationID == "" {
		u.CorrelationID = u.DocumentID
	}
	if err := streams.ValidToken(u.Owner); err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	if err := streams.ValidToken(u.DocumentID); err != nil {
		return nil, fmt.Errorf("document id: %w", err)
	}
	limit := s.maxBytes
	if u.MaxBytes > 0 {
		limit = min(limit, u.MaxBytes)
	}
	if u.Size > limit {
		return nil, ErrTooLarge
	}
	log := zerolog.Ctx(ctx).With().Str("document_id", u.DocumentID).Str("correlation_id", u.CorrelationID).Logger()
	key := blob.Key(u.Owner, u.DocumentID, u.Filename, s.now().UTC())
	body := LimitReader(u.Body, limit)
	res, err := s.store.Put(ctx, key, body, u.Size, "application/octet-stream")
	if body.Exceeded {
		return nil, ErrTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("store original of %s: %w", u.DocumentID, err)
	}
	if res.Size == 0 {
		return nil, ErrEmpty
	}
	ev, err := s.pub.Emit(ctx, streams.Meta{Owner: u.Owner, DocumentID: u.DocumentID, Run: 1, CorrelationID: u.CorrelationID},
		streams.Uploaded, "", streams.UploadedData{
			Original:    streams.ObjectRef{Key: res.Key, Size: res.Size, SHA256: res.SHA256},
			Filename:    blob.SafeFilename(u.Filename),
			ContentType: u.ContentType,
			UploadedBy:  u.UploadedBy,
			Via:         u.Via,
		})
	if err != nil {
		// The object stays behind without an event; the client sees an
		// error and retries. Orphans are cheap and found by key prefix.
		return nil, fmt.Errorf("announce %s: %w", u.DocumentID, err)
	}
	log.Info().Int64("size", res.Size).Str("key", res.Key).Str("via", u.Via).Msg("document accepted")
	return ev, nil
}

// LimitReader returns a reader of r that fails with ErrTooLarge once more
// than n bytes are read, so an oversized streamed upload is cut off
// instead of filling the store.
func LimitReader(r io.Reader, n int64) *LimitedReader { return &LimitedReader{r: r, left: n} }

// LimitedReader is what LimitReader returns.
type LimitedReader struct {
	r        io.Reader
	left     int64
	Exceeded bool // more than the limit was sent
}

func (l *LimitedReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		l.Exceeded = true
		return 0, ErrTooLarge
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1] // one byte more than allowed shows the excess
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.Exceeded = true
		return n, ErrTooLarge
	}
	return n, err
}
