package api

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// Input limits.
const (
	maxSearchChars = 100 // q
	maxCursorBytes = 512
)

var (
	statuses = []string{streams.StatusUploaded, streams.StatusExtracting, streams.StatusExtracted,
		streams.StatusAnalyzing, streams.StatusQueued, streams.StatusAnalyzed, streams.StatusFailed}
	riskLevels = []string{"low", "medium", "high", "critical"}
)

// filterParams are the document filters shared by GET /documents, the
// exports and (since/until) /stats, as the client sent them: from the
// query string, or for POST /assessments/export also from a JSON body.
type filterParams struct {
	Status    string `json:"status"`
	RiskLevel string `json:"risk_level"`
	MinScore  *int   `json:"min_score"`
	MaxScore  *int   `json:"max_score"`
	Since     string `json:"since"`
	Until     string `json:"until"`
	Q         string `json:"q"`
	Sort      string `json:"sort"`
}

// queryFilters reads the filters from the query string.
func queryFilters(c *fiber.Ctx) (filterParams, error) {
	p := filterParams{
		Status: c.Query("status"), RiskLevel: c.Query("risk_level"),
		Since: c.Query("since"), Until: c.Query("until"), Q: c.Query("q"), Sort: c.Query("sort"),
	}
	var err error
	if p.MinScore, err = optionalInt(c, "min_score"); err != nil {
		return p, err
	}
	if p.MaxScore, err = optionalInt(c, "max_score"); err != nil {
		return p, err
	}
	return p, nil
}

func optionalInt(c *fiber.Ctx, name string) (*int, error) {
	raw := c.Query(name)
	if raw == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return nil, badParam(name, "must be an integer")
	}
	return &n, nil
}

// overlay sets the fields b sets, so a JSON body refines the query string.
func (p filterParams) overlay(b filterParams) filterParams {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&p.Status, b.Status)
	set(&p.RiskLevel, b.RiskLevel)
	set(&p.Since, b.Since)
	set(&p.Until, b.Until)
	set(&p.Q, b.Q)
	set(&p.Sort, b.Sort)
	if b.MinScore != nil {
		p.MinScore = b.MinScore
	}
	if b.MaxScore != nil {
		p.MaxScore = b.MaxScore
	}
	return p
}

// query validates the filters into a store query. Each problem names its
// parameter.
func (p filterParams) query() (store.ListQuery, error) {
	q := store.ListQuery{Status: p.Status, RiskLevel: p.RiskLevel, Sort: p.Sort}
	if p.Status != "" && !slices.Contains(statuses, p.Status) {
		return q, badParam("status", "must be one of "+strings.Join(statuses, ", "))
	}
	if p.RiskLevel != "" && !slices.Contains(riskLevels, p.RiskLevel) {
		return q, badParam("risk_level", "must be one of "+strings.Join(riskLevels, ", "))
	}
	if p.Sort != "" && !slices.Contains(store.Sorts, p.Sort) {
		return q, badParam("sort", "must be one of "+strings.Join(store.Sorts, ", "))
	}
	if p.MinScore != nil && (*p.MinScore < 0 || *p.MinScore > 100) {
		return q, badParam("min_score", "must be between 0 and 100")
	}
	if p.MaxScore != nil && (*p.MaxScore < 0 || *p.MaxScore > 100) {
		return q, badParam("max_score", "must be between 0 and 100")
	}
	if p.MinScore != nil && p.MaxScore != nil && *p.MinScore > *p.MaxScore {
		return q, badParam("min_score", "must not exceed max_score")
	}
	q.MinScore, q.MaxScore = p.MinScore, p.MaxScore
	var err error
	if q.Since, err = timeParam("since", p.Since); err != nil {
		return q, err
	}
	if q.Until, err = timeParam("until", p.Until); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
		return q, badParam("since", "must be before until")
	}
	if err := searchParam(p.Q); err != nil {
		return q, err
	}
	q.FilenameContains = p.Q
	return q, nil
}

func timeParam(name, raw string) (time.Time, error) {
	if raw == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return time.Time{}, badParam(name, "must be an RFC 3339 time, e.g. 2025-05-01T00:00:00Z")
	}
	return t, nil
}

func searchParam(q string) error {
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > maxSearchChars {
		return badParam("q", "must be valid UTF-8 of at most "+strconv.Itoa(maxSearchChars)+" characters")
	}
	if strings.ContainsFunc(q, unicode.IsControl) {
		return badParam("q", "must not contain control characters")
	}
	return nil
}

// pageParams reads limit and cursor.
func pageParams(c *fiber.Ctx) (limit int, cursor string, err error) {
	limit = store.DefaultLimit
	if raw := c.Query("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > store.MaxLimit {
			return 0, "", badParam("limit", "must be an integer from 1 to "+strconv.Itoa(store.MaxLimit))
		}
		limit = n
	}
	cursor = c.Query("cursor")
	if len(cursor) > maxCursorBytes {
		return 0, "", badParam("cursor", "is not a cursor from this API")
	}
	return limit, cursor, nil
}

// documentID reads the :id path parameter; an id that cannot exist is
// simply not found.
func documentID(c *fiber.Ctx) (string, error) {
	id := c.Params("id")
	if streams.ValidToken(id) != nil {
		return "", notFound("")
	}
	return id, nil
}
