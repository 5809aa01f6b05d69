package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// pageLimit is the page size a list asks for, defaulted and bounded.
func pageLimit(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return min(n, MaxLimit)
}

// Sort orders of a document list. Every order ends in the document id, so
// it is total and keyset pagination never skips or repeats a row.
const (
	SortNewest    = "-uploaded_at" // the default
	SortOldest    = "uploaded_at"
	SortScoreDesc = "-score"
	SortScoreAsc  = "score"
)

// Sorts lists the accepted sort orders.
var Sorts = []string{SortNewest, SortOldest, SortScoreDesc, SortScoreAsc}

// unscored is the sort key of a document without a score: below every
// real score (0-100), so unscored documents come last in -score and first
// in score. An expression index on COALESCE(score, -1) serves both.
const unscored = -1

// ErrBadCursor: the cursor was not made by ListDocuments for this sort (a
// client error).
var ErrBadCursor = errors.New("invalid cursor")

// ErrBadSort: an unknown sort order (a client error).
var ErrBadSort = errors.New("invalid sort")

// ListQuery filters and orders an owner's documents; ListDocuments pages
// it, exports stream it. Zero values filter nothing.
type ListQuery struct {
	Status           string
	RiskLevel        string
	MinScore         *int
	MaxScore         *int
	Since            time.Time // uploaded at or after
	Until            time.Time // uploaded before
	FilenameContains string    // case-insensitive substring
	FilenamePrefix   string    // case-insensitive prefix (index-assisted)
	Sort             string    // one of Sorts; "" = SortNewest
	Limit            int       // DefaultLimit when 0, at most MaxLimit (lists only)
	Cursor           string    // from the previous page; "" = first page (lists only)
}

// cursor is the keyset position after which the next page starts. It names
// a position, not an offset, so documents inserted meanwhile neither shift
// nor repeat later pages.
type cursor struct {
	Sort           string `json:"s,omitempty"`
	Score          int    `json:"v,omitempty"`
	UploadedMicros int64  `json:"t"`
	ID             string `json:"id"`
}

func (c cursor) encode() string {
	raw, _ := json.Marshal(c) // ints and strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(raw)
}

func decodeCursor(s, sort string) (cursor, error) {
	var c cursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	// A cursor from another order would start the page at a meaningless
	// position: refuse it rather than return a wrong page.
	if err != nil || c.ID == "" || c.Sort != sort {
		return cursor{}, ErrBadCursor
	}
	return c, nil
}

// order describes one sort order as SQL over the documents alias d.
type order struct {
	keys []string // the keyset tuple
	desc bool
}

var (
	byUpload    = []string{"d.uploaded_at", "d.id"}
	byScoreKeys = []string{"COALESCE(d.score, -1)", "d.uploaded_at", "d.id"}
)

func orderOf(sort string) (order, error) {
	switch sort {
	case "", SortNewest:
		return order{keys: byUpload, desc: true}, nil
	case SortOldest:
		return order{keys: byUpload}, nil
	case SortScoreDesc:
		return order{keys: byScoreKeys, desc: true}, nil
	case SortScoreAsc:
		return order{keys: byScoreKeys}, nil
	}
	return order{}, ErrBadSort
}

// by is the ORDER BY clause: every key in the same direction, so a row
// comparison on the tuple is the keyset condition and one index serves it
// forwards or backwards.
func (o order) by() string {
	dir := " ASC"
	if o.desc {
		dir = " DESC"
	}
	parts := make([]string, len(o.keys))
	for i, k := range o.keys {
		parts[i] = k + dir
	}
	return strings.Join(parts, ", ")
}

// after is the condition selecting rows past the cursor.
func (o order) after(b *queryBuilder, c cursor, byScore bool) string {
	cmp := " > "
	if o.desc {
		cmp = " < "
	}
	vals := b.arg(time.UnixMicro(c.UploadedMicros).UTC()) + ", " + b.arg(c.ID)
	if byScore {
		vals = b.arg(c.Score) + ", " + vals
	}
	return "(" + strings.Join(o.keys, ", ") + ")" + cmp + "(" + vals + ")"
}

func byScore(sort string) bool { return sort == SortScoreDesc || sort == SortScoreAsc }

// cursorAfter is the cursor that continues after d in sort.
func cursorAfter(sort string, d Document) string {
	if sort == "" {
		sort = SortNewest
	}
	c := cursor{Sort: sort, UploadedMicros: d.UploadedAt.UnixMicro(), ID: d.ID}
	if byScore(sort) {
		c.Score = unscored
		if d.Score != nil {
			c.Score = *d.Score
		}
	}
	return c.encode()
}

// filter adds q's conditions on the documents alias d, owner first, soft
// deleted documents excluded.
func (q ListQuery) filter(b *queryBuilder, owner string) {
	b.where("d.owner = "+b.arg(owner), "d.deleted_at IS NULL")
	if q.Status != "" {
		b.where("d.status = " + b.arg(q.Status))
	}
	if q.RiskLevel != "" {
		b.where("d.risk_level = " + b.arg(q.RiskLevel))
	}
	if q.MinScore != nil {
		b.where("d.score >= " + b.arg(*q.MinScore))
	}
	if q.MaxScore != nil {
		b.where("d.score <= " + b.arg(*q.MaxScore))
	}
	if !q.Since.IsZero() {
		b.where("d.uploaded_at >= " + b.arg(q.Since))
	}
	if !q.Until.IsZero() {
		b.where("d.uploaded_at < " + b.arg(q.Until))
	}
	if q.FilenameContains != "" {
		b.where(`lower(d.filename) LIKE ` + b.arg("%"+escapeLike(strings.ToLower(q.FilenameContains))+"%"))
	}
	if q.FilenamePrefix != "" {
		b.where(`lower(d.filename) LIKE ` + b.arg(escapeLike(strings.ToLower(q.FilenamePrefix))+"%"))
	}
}

// queryBuilder collects conditions with positional arguments.
type queryBuilder struct {
	conds []string
	args  []any
}

func (b *queryBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *queryBuilder) where(conds ...string) { b.conds = append(b.conds, conds...) }

func (b *queryBuilder) sql() string { return strings.Join(b.conds, " AND ") }

// escapeLike makes a user's text match literally in LIKE (backslash is
// PostgreSQL's default LIKE escape).
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
