// Package extractor turns stored documents into text. The stage consumes
// document.uploaded, reads the original from the claim-check store, decides
// the format by content, extracts, stores the text as a claim check and
// emits document.extracted.
package extractor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/aiprism/prism/extractor/textfmt"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/streams"
	"github.com/rs/zerolog"
)

// Objects is the part of the claim-check store the extractor needs.
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
	Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (blob.PutResult, error)
}

// Limits bound what one document may cost.
type Limits struct {
	MaxInputBytes int64 // originals larger than this are rejected
	MaxChars      int   // extracted text is cut here and flagged truncated
}

// Stage is the extractor's event handler.
type Stage struct {
	objects Objects
	pub     *streams.Publisher
	limits  Limits
}

// NewStage returns the extraction stage.
func NewStage(objects Objects, pub *streams.Publisher, limits Limits) *Stage {
	return &Stage{objects: objects, pub: pub, limits: limits}
}

// Result is one extraction.
type Result struct {
	Text      string
	Format    string
	Encoding  string
	Pages     int
	Sheets    int
	Truncated bool
	Title     string
	Author    string
}

// Handle extracts the document of one uploaded event. Every effect is
// keyed by the document and run, so a redelivery rewrites the same text
// object and republishes the same event id, which JetStream drops.
func (s *Stage) Handle(ctx context.Context, ev *streams.Event) error {
	var up streams.UploadedData
	if err := ev.Decode(&up); err != nil {
		return streams.Permanent("bad-event", err)
	}
	m := streams.MetaOf(ev)
	if _, err := s.pub.Emit(ctx, m, streams.Progress, "extract-started", streams.ProgressData{
		Stage: streams.StageExtract, Step: "started", Status: "extracting",
	}); err != nil {
		return err
	}
	if up.Original.Size > s.limits.MaxInputBytes {
		return streams.Permanentf("too-large", "document is %d bytes; the limit is %d", up.Original.Size, s.limits.MaxInputBytes)
	}
	raw, err := s.read(ctx, up.Original.Key)
	if err != nil {
		return err
	}
	res, err := s.extract(raw)
	if err != nil {
		return err
	}
	textKey := blob.TextKey(ev.Owner, ev.Subject, ev.Run)
	put, err := s.objects.Put(ctx, textKey, strings.NewReader(res.Text), int64(len(res.Text)), "text/plain; charset=utf-8")
	if err != nil {
		return fmt.Errorf("store text: %w", err)
	}
	words := len(strings.FieldsFunc(res.Text, unicode.IsSpace))
	_, err = s.pub.Emit(ctx, m, streams.Extracted, "", streams.ExtractedData{
		Text:      streams.ObjectRef{Key: put.Key, Size: put.Size, SHA256: put.SHA256},
		Format:    res.Format,
		Encoding:  res.Encoding,
		Pages:     res.Pages,
		Sheets:    res.Sheets,
		Words:     words,
		Chars:     len([]rune(res.Text)),
		Truncated: res.Truncated,
		Title:     res.Title,
		Author:    res.Author,
	})
	if err == nil {
		zerolog.Ctx(ctx).Info().Str("format", res.Format).Int("words", words).Bool("truncated", res.Truncated).Msg("extracted")
	}
	return err
}

func (s *Stage) read(ctx context.Context, key string) ([]byte, error) {
	rc, _, err := s.objects.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, streams.Permanentf("original-missing", "the stored original %s is gone", key)
	}
	if err != nil {
		return nil, fmt.Errorf("read original: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, s.limits.MaxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read original: %w", err)
	}
	if int64(len(raw)) > s.limits.MaxInputBytes {
		return nil, streams.Permanentf("too-large", "document exceeds %d bytes", s.limits.MaxInputBytes)
	}
	return raw, nil
}

// extract decides the format by content, never by name or declared type.
func (s *Stage) extract(raw []byte) (Result, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Result{}, streams.Permanentf("empty", "the document is empty")
	}
	head := raw[:min(len(raw), 4096)]
	if !textfmt.Looks(head) {
		return Result{}, streams.Permanentf("unsupported-format", "this file type is not supported yet; upload a UTF-8 text document")
	}
	text, err := textfmt.Decode(raw)
	if errors.Is(err, textfmt.ErrInvalidUTF8) || errors.Is(err, textfmt.ErrBinary) {
		return Result{}, streams.Permanent("invalid-utf8", err)
	}
	if err != nil {
		return Result{}, streams.Permanent("unreadable", err)
	}
	res := Result{Text: text, Format: "txt", Encoding: "utf-8"}
	res.Text, res.Truncated = capChars(res.Text, s.limits.MaxChars)
	return res, nil
}

// capChars cuts s after max characters (runes).
func capChars(s string, max int) (string, bool) {
	if max <= 0 || len(s) <= max {
		return s, false
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i], true
		}
		n++
	}
	return s, false
}
