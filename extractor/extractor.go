// Package extractor turns stored documents into text. The stage consumes
// document.uploaded, streams the original from the claim-check store into
// a sandboxed worker process that decides the format by content and
// extracts (extractor/sandbox, extractor/worker), stores the text as a
// claim check and emits document.extracted.
package extractor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"

	"github.com/aiprism/prism/extractor/extract"
	"github.com/aiprism/prism/extractor/reason"
	"github.com/aiprism/prism/extractor/sandbox"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/streams"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Objects is the part of the claim-check store the extractor needs.
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (blob.PutResult, error)
}

// Extractor turns one original into text. *sandbox.Sandbox is the
// production implementation; failures of the document are *reason.Error.
type Extractor interface {
	Extract(ctx context.Context, doc io.Reader, size int64) (extract.Result, sandbox.Usage, error)
}

// Stage is the extractor's event handler.
type Stage struct {
	objects Objects
	pub     *streams.Publisher
	limits  Limits
	x       Extractor
	log     *streams.Log // nil: no check for work already done
}

// Option configures a Stage.
type Option func(*Stage)

// WithJetStream lets the stage see that a redelivered event's document was
// already extracted in this run, and skip the work instead of redoing it.
func WithJetStream(js jetstream.JetStream) Option {
	return func(s *Stage) { s.log = streams.NewLog(js) }
}

// NewStage returns the extraction stage, extracting with x (the role
// passes its sandbox; tests pass a sandbox running the test binary).
func NewStage(objects Objects, pub *streams.Publisher, limits Limits, x Extractor, opts ...Option) *Stage {
	s := &Stage{objects: objects, pub: pub, limits: limits.withDefaults(), x: x}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Result is one extraction as the stage reports it.
type Result struct {
	Text       string
	Format     string
	Encoding   string
	Pages      int
	Sheets     int
	SheetNames []string
	Truncated  bool
	Title      string
	Author     string
	Language   string
	Words      int
	Chars      int
}

// Handle extracts the document of one uploaded event. Every effect is
// keyed by the document and run, so a redelivery rewrites the same text
// object and republishes the same event id, which JetStream drops.
func (s *Stage) Handle(ctx context.Context, ev *streams.Event) error {
	var up streams.UploadedData
	if err := ev.Decode(&up); err != nil {
		return streams.Permanent(streams.ClassBadEvent, err)
	}
	if !blob.OwnedBy(up.Original.Key, ev.Owner) {
		// A forged or mistaken event must not make this stage read, and
		// publish as text, another owner's document.
		return streams.Permanent(streams.ClassForeignObject, fmt.Errorf("original %q is not an object of owner %s", up.Original.Key, ev.Owner))
	}
	m := streams.MetaOf(ev)
	if s.log != nil {
		if done, err := s.log.Emitted(ctx, m, streams.Extracted); err != nil || done {
			return err // extracted before: a redelivery changes nothing
		}
	}
	if _, err := s.pub.Emit(ctx, m, streams.Progress, "extract-started", streams.ProgressData{
		Stage: streams.StageExtract, Step: "started", Status: streams.StatusExtracting,
	}); err != nil {
		return err
	}
	if up.Original.Size > s.limits.MaxInputBytes {
		return streams.Permanentf(reason.TooLarge, "document is %d bytes; the limit is %d", up.Original.Size, s.limits.MaxInputBytes)
	}
	res, err := s.extract(ctx, up.Original)
	if err != nil {
		return err
	}
	textKey := blob.TextKey(ev.Owner, ev.Subject, strconv.Itoa(ev.Run))
	put, err := s.objects.Put(ctx, textKey, strings.NewReader(res.Text), int64(len(res.Text)), "text/plain; charset=utf-8")
	if err != nil {
		return fmt.Errorf("store text: %w", err)
	}
	_, err = s.pub.Emit(ctx, m, streams.Extracted, "", streams.ExtractedData{
		Text:      streams.ObjectRef{Key: put.Key, Size: put.Size, SHA256: put.SHA256},
		Format:    res.Format,
		Encoding:  res.Encoding,
		Pages:     res.Pages,
		Sheets:    res.Sheets,
		Words:     res.Words,
		Chars:     res.Chars,
		Truncated: res.Truncated,
		Language:  res.Language,
		Title:     res.Title,
		Author:    res.Author,
	})
	if err == nil {
		zerolog.Ctx(ctx).Info().Str("format", res.Format).Int("words", res.Words).Int("pages", res.Pages).
			Int("sheets", res.Sheets).Bool("truncated", res.Truncated).Msg("extracted")
	}
	return err
}

// extract streams the original into the extractor, checking on the way
// that the stored bytes are the ones ingest recorded.
func (s *Stage) extract(ctx context.Context, orig streams.ObjectRef) (Result, error) {
	rc, _, err := s.objects.Get(ctx, orig.Key)
	if errors.Is(err, blob.ErrNotFound) {
		return Result{}, streams.Permanent(streams.ClassOriginalMissing, err)
	}
	if err != nil {
		return Result{}, fmt.Errorf("read original: %w", err)
	}
	defer rc.Close()
	h := sha256.New()
	r := &hashingReader{r: rc, h: h}
	xr, usage, err := s.x.Extract(ctx, r, orig.Size)
	if err != nil {
		var re *reason.Error
		if errors.As(err, &re) {
			zerolog.Ctx(ctx).Info().Str("reason", re.Class).Dur("wall", usage.Wall).Int64("max_rss", usage.MaxRSS).Msg("extraction failed")
			return Result{}, &streams.PermanentError{Class: re.Class, Reason: userReason(re), Err: re.Err}
		}
		return Result{}, fmt.Errorf("extract: %w", err)
	}
	if r.n != orig.Size {
		return Result{}, fmt.Errorf("read original: got %d bytes, the event says %d", r.n, orig.Size)
	}
	if orig.SHA256 != "" && !strings.EqualFold(hex.EncodeToString(h.Sum(nil)), orig.SHA256) {
		return Result{}, streams.Permanent(streams.ClassOriginalCorrupt, fmt.Errorf("the stored original %s does not match its recorded checksum", orig.Key))
	}
	zerolog.Ctx(ctx).Debug().Dur("wall", usage.Wall).Dur("cpu", usage.User+usage.System).Int64("max_rss", usage.MaxRSS).Msg("worker usage")
	return Result{
		Text: xr.Text, Format: xr.Format, Encoding: xr.Encoding, Pages: xr.Pages, Sheets: xr.Sheets,
		SheetNames: xr.SheetNames, Truncated: xr.Truncated, Title: xr.Title, Author: xr.Author,
		Language: xr.Language, Words: xr.Words, Chars: xr.Chars,
	}, nil
}

// userReason is what users are told about an extraction failure: the
// parsers' messages are written for them (see package reason), but an
// internal failure's message is an environment's error, which only the
// logs get.
func userReason(re *reason.Error) string {
	if re.Class == reason.Internal {
		return "The document could not be extracted because of a problem on our side, not in the document."
	}
	return re.Err.Error()
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}
