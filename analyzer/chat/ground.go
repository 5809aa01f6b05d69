package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/aiprism/prism/analyzer/prompt"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/streams"
	"github.com/rs/zerolog"
)

// Objects is the part of the claim-check store the answerer reads.
type Objects interface {
	Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
}

// maxListed bounds the recent documents a free session's prompt lists
// by name when the question names none.
const maxListed = 10

// maxSummaryBytes bounds an assessment summary in the list of documents.
const maxSummaryBytes = 600

// ground gathers what an answer to d is grounded in: for a session bound
// to a document, its assessment and the passages of its text retrieved
// for the question; for a free session, the owner's recent documents
// that the question names (or a short list of them).
func (a *Answerer) ground(ctx context.Context, owner string, d streams.ChatAskedData) (prompt.Material, []Retrieved, error) {
	if d.DocumentID == "" {
		docs, err := a.recent(ctx, owner, d.Content, d.Recent)
		return prompt.Material{Documents: docs}, nil, err
	}
	return a.document(ctx, owner, d.DocumentID, d.Content)
}

// document grounds a question in one of owner's documents: what is not
// there yet (a document still being extracted or analyzed) is left out.
func (a *Answerer) document(ctx context.Context, owner, doc, question string) (prompt.Material, []Retrieved, error) {
	m := prompt.Material{Filename: doc}
	var up streams.UploadedData
	if ok, err := a.lastOf(ctx, owner, doc, streams.Uploaded, &up); err != nil {
		return m, nil, err
	} else if ok && up.Filename != "" {
		m.Filename = up.Filename
	}
	var an streams.AnalyzedData
	if ok, err := a.lastOf(ctx, owner, doc, streams.Analyzed, &an); err != nil {
		return m, nil, err
	} else if ok {
		m.Assessment = string(an.Assessment)
	}
	var ex streams.ExtractedData
	ok, err := a.lastOf(ctx, owner, doc, streams.Extracted, &ex)
	if err != nil || !ok {
		return m, nil, err
	}
	if !blob.OwnedBy(ex.Text.Key, owner) {
		// A forged or mistaken event must not make the answerer read
		// another owner's text, nor send it to a model.
		return m, nil, streams.Permanent(streams.ClassForeignObject, fmt.Errorf("text %q is not an object of owner %s", ex.Text.Key, owner))
	}
	text, err := a.readText(ctx, ex.Text)
	if errors.Is(err, blob.ErrNotFound) {
		zerolog.Ctx(ctx).Warn().Str("document_id", doc).Msg("the document's text is gone; answering without passages")
		return m, nil, nil
	}
	if err != nil {
		return m, nil, err
	}
	retrieved := Retrieve(text, ex.Format, question, a.cfg.Passages)
	for _, r := range retrieved {
		m.Passages = append(m.Passages, r.Prompt)
	}
	return m, retrieved, nil
}

// lastOf decodes the newest event of type t of owner's document into v;
// false when there is none. An event that cannot be decoded counts as
// none: it is logged, and the answer goes on without it.
func (a *Answerer) lastOf(ctx context.Context, owner, doc string, t streams.EventType, v any) (bool, error) {
	ev, err := a.docs.Last(ctx, streams.DocSubject(owner, doc, t))
	if err != nil || ev == nil {
		return false, err
	}
	if err := ev.Decode(v); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("document_id", doc).Msg("document event unreadable; answering without it")
		return false, nil
	}
	return true, nil
}

func (a *Answerer) readText(ctx context.Context, ref streams.ObjectRef) (string, error) {
	rc, _, err := a.objects.Get(ctx, ref.Key)
	if err != nil {
		return "", fmt.Errorf("read the document's text: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, int64(a.cfg.MaxChars)*4+1))
	if err != nil {
		return "", fmt.Errorf("read the document's text: %w", err)
	}
	return string(raw), nil
}

// recent lists owner's recent documents for a free session: one line
// with the assessment (level, score, summary) of each document the
// question names by filename or by its stem, case-insensitively; when it
// names none, the most recent ones by name, so the user can ask about
// them.
func (a *Answerer) recent(ctx context.Context, owner, question string, refs []streams.ChatDocRef) ([]string, error) {
	q := strings.ToLower(question)
	var lines []string
	for _, r := range refs {
		if !names(q, r.Filename) {
			continue
		}
		var an streams.AnalyzedData
		ok, err := a.lastOf(ctx, owner, r.ID, streams.Analyzed, &an)
		if err != nil {
			return nil, err
		}
		lines = append(lines, docLine(r.Filename, an, ok))
	}
	if len(lines) > 0 {
		return lines, nil
	}
	for _, r := range refs[:min(len(refs), maxListed)] {
		lines = append(lines, r.Filename)
	}
	return lines, nil
}

// names reports whether the lowercased question q names filename: the
// whole name, or its stem ("contract" of "Contract.pdf") as a word.
func names(q, filename string) bool {
	name := strings.ToLower(filename)
	stem := strings.TrimSuffix(name, path.Ext(name))
	if name != "" && strings.Contains(q, name) {
		return true
	}
	if utf8.RuneCountInString(stem) < 3 {
		return false // "a.pdf" is not named by every "a"
	}
	for i := 0; ; {
		j := strings.Index(q[i:], stem)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(stem)
		before, _ := utf8.DecodeLastRuneInString(q[:start])
		after, _ := utf8.DecodeRuneInString(q[end:])
		if !wordRune(before) && !wordRune(after) {
			return true
		}
		i = start + 1
	}
}

func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// docLine is a document's line in a free session's prompt.
func docLine(filename string, an streams.AnalyzedData, analyzed bool) string {
	if !analyzed {
		return filename + ": not analyzed yet"
	}
	var a struct {
		Summary string `json:"summary"`
	}
	_ = json.Unmarshal(an.Assessment, &a) // no summary: the level and score still say much
	return filename + ": " + an.Level + ", " + strconv.Itoa(an.Score) + "/100: " + oneLine(bounded(a.Summary, maxSummaryBytes))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// citeRefs finds the [n] (or [n, m]) references of an answer.
var citeRefs = regexp.MustCompile(`\[([0-9]{1,3}(?:\s*,\s*[0-9]{1,3})*)\]`)

// Cited are the citations of the passages an answer actually cites by
// [n], in the order of their numbers; numbers that match no passage it
// was given are ignored.
func Cited(text string, given []Retrieved) []streams.Citation {
	used := map[int]bool{}
	for _, m := range citeRefs.FindAllStringSubmatch(text, -1) {
		for _, n := range strings.Split(m[1], ",") {
			ref, _ := strconv.Atoi(strings.TrimSpace(n))
			used[ref] = true
		}
	}
	out := []streams.Citation{} // a list, never null
	for _, r := range given {
		if used[r.Citation.Ref] {
			out = append(out, r.Citation)
		}
	}
	slices.SortFunc(out, func(a, b streams.Citation) int { return a.Ref - b.Ref })
	return out
}
