package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/quota"
	"github.com/gofiber/fiber/v2"
)

// Limits are the per-user abuse limits. Their counts live in the quota
// bucket (platform/quota), not in this process, so they hold across API
// replicas: a user spreading requests over replicas meets the same
// numbers. The daily model-token budget is the analyzers'
// (ANALYZER_DAILY_TOKENS_PER_USER), published in the same bucket.
type Limits struct {
	UploadsPerMinute int // uploads in any 60 s
	DocsInFlight     int // documents uploaded or re-analyzed and not yet analyzed or failed
	SSEStreams       int // event streams open at once
	Exports          int // exports running at once
}

// DefaultLimits are the limits when none are configured.
func DefaultLimits() Limits {
	return Limits{UploadsPerMinute: 60, DocsInFlight: 200, SSEStreams: 20, Exports: 2}
}

// limitsFromEnv reads API_LIMIT_*.
func limitsFromEnv(l *config.Loader) Limits {
	d := DefaultLimits()
	return Limits{
		UploadsPerMinute: l.Int("API_LIMIT_UPLOADS_PER_MINUTE", d.UploadsPerMinute, 1, 1_000_000),
		DocsInFlight:     l.Int("API_LIMIT_DOCS_IN_FLIGHT", d.DocsInFlight, 1, 1_000_000),
		SSEStreams:       l.Int("API_LIMIT_SSE_STREAMS", d.SSEStreams, 1, 100_000),
		Exports:          l.Int("API_LIMIT_EXPORTS", d.Exports, 1, 1000),
	}
}

// withDefaults fills what a Limits built in code (tests) leaves zero.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	for _, f := range []struct{ v, def *int }{
		{&l.UploadsPerMinute, &d.UploadsPerMinute}, {&l.DocsInFlight, &d.DocsInFlight},
		{&l.SSEStreams, &d.SSEStreams}, {&l.Exports, &d.Exports},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return l
}

// Lease kinds in the quota bucket.
const (
	leaseSSE     = "sse"
	leaseExports = "exports"
)

// Problem classes of the limits (429).
const (
	classTooManyUploads  = "too-many-uploads"
	classTooManyInFlight = "too-many-in-flight"
	classTooManyStreams  = "too-many-streams"
	classTooManyExports  = "too-many-exports"
	classBudgetSpent     = "budget-spent"
)

// admit counts a document run about to be submitted by the request's
// owner against the limits: the daily budget, then (one compare-and-set)
// uploads per minute and documents in flight. perMinute says whether it
// is an upload (re-analyses are not uploads). Cancel the admission if the
// document is not submitted after all.
func (s *Server) admit(c *fiber.Ctx, doc quota.Doc, perMinute bool) (*quota.Admission, error) {
	ctx, owner := c.UserContext(), ownerOf(c)
	if err := s.deps.Quota.CheckPublished(ctx, owner); err != nil {
		return nil, s.refusal(c, err)
	}
	lim := quota.Limits{InFlight: s.cfg.Limits.DocsInFlight}
	if perMinute {
		lim.PerMinute = s.cfg.Limits.UploadsPerMinute
	}
	st := store.New(s.deps.Pool)
	a, err := s.deps.Quota.Admit(ctx, owner, doc, lim, func(ctx context.Context, owner string, recent []quota.Doc) (int, []quota.Doc, error) {
		ids, runs := make([]string, len(recent)), make([]int, len(recent))
		for i, d := range recent {
			ids[i], runs[i] = d.ID, d.Run
		}
		n, unseen, err := st.InFlight(ctx, owner, ids, runs)
		out := make([]quota.Doc, len(unseen))
		for i, j := range unseen {
			out[i] = recent[j]
		}
		return n, out, err
	})
	if err != nil {
		return nil, s.refusal(c, err)
	}
	return a, nil
}

// cancel gives back an admission whose document was not submitted; it
// runs after the request failed, so on a context of its own.
func (s *Server) cancel(c *fiber.Ctx, a *quota.Admission) {
	ctx, done := context.WithTimeout(context.WithoutCancel(c.UserContext()), 5*time.Second)
	defer done()
	if err := a.Cancel(ctx); err != nil {
		s.deps.Log.Warn().Err(err).Str("request_id", requestID(c)).Msg("limits: an unsubmitted document keeps its place until it ages out")
	}
}

// lease takes one of the owner's places of kind (max of them).
func (s *Server) lease(c *fiber.Ctx, kind string, max int) (*quota.Lease, error) {
	l, err := s.deps.Quota.Acquire(c.UserContext(), kind, ownerOf(c), max)
	if err != nil {
		return nil, s.refusal(c, err)
	}
	return l, nil
}

// release gives a lease back, when the stream or export it was for has
// ended (after the request, so on a context of its own).
func (s *Server) release(l *quota.Lease) {
	ctx, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	if err := l.Release(ctx); err != nil {
		s.deps.Log.Warn().Err(err).Msg("limits: a lease is held until it expires")
	}
}

// refusal answers a limit reached with 429, Retry-After and a sentence
// saying which limit and when it frees up. Any other error (the bucket or
// the database did not answer) is the server's.
func (s *Server) refusal(c *fiber.Ctx, err error) error {
	var ex *quota.Exceeded
	if !errors.As(err, &ex) {
		return fmt.Errorf("limits of %s: %w", ownerOf(c), err)
	}
	wait := max(time.Duration(math.Ceil(ex.RetryAfter.Seconds()))*time.Second, time.Second)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(wait/time.Second)))
	var class, detail string
	switch ex.Limit {
	case quota.LimitUploads:
		class = classTooManyUploads
		detail = fmt.Sprintf("you uploaded %d documents in the last minute, the limit per minute; the next upload is possible in %s", ex.Used, wait)
	case quota.LimitInFlight:
		class = classTooManyInFlight
		detail = fmt.Sprintf("%d of your documents are being processed, the limit; submit more once some are analyzed or failed (retry in %s)", ex.Used, wait)
	case leaseSSE:
		class = classTooManyStreams
		detail = fmt.Sprintf("you have %d event streams open, the limit; one frees when a stream ends, and a stream whose connection was lost frees within %s", ex.Used, wait)
	case leaseExports:
		class = classTooManyExports
		detail = fmt.Sprintf("you have %d exports running, the limit; one frees when an export finishes (retry in %s)", ex.Used, wait)
	case quota.LimitTokens:
		class = classBudgetSpent
		detail = fmt.Sprintf("your daily model budget of %d tokens is spent (%d used today); it renews at midnight UTC, in %s", ex.Max, ex.Used, wait)
	default:
		return fmt.Errorf("limits of %s: %w", ownerOf(c), err)
	}
	return problem(fiber.StatusTooManyRequests, class, detail)
}
