package quota

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Window is the upload window in whole seconds. As the router does for
// model quotas, uploads are counted in per-second bins over 61 s, so the
// uploads in every 60 s window stay within the limit whichever second an
// upload lands in. (A token bucket would let twice the limit through in
// the first minute: a full bucket plus a minute of refill.)
const Window = 61

// pendingFor bounds how long a submitted document counts in flight while
// the read model has not seen it: the projector normally takes
// milliseconds, and a submission whose request died before the document
// was stored (the replica crashed) must not count for ever.
const pendingFor = 10 * time.Minute

// Doc is a document run submitted for processing: an upload (run 1) or a
// re-analysis (the run it starts).
type Doc struct {
	ID  string `json:"id"`
	Run int    `json:"run"`
}

// InFlightFunc counts owner's documents in flight in the read model (not
// yet analyzed or failed), adding those of recent that it has not seen
// yet (no row, or a row of an earlier run), and returns those.
type InFlightFunc func(ctx context.Context, owner string, recent []Doc) (inFlight int, unseen []Doc, err error)

// uploadsState is one owner's upload window and submissions not yet in
// the read model.
type uploadsState struct {
	Bins    []bin     `json:"bins,omitempty"` // non-empty seconds of the window, oldest first
	Pending []pending `json:"pending,omitempty"`
}

type bin struct {
	Sec int64 `json:"s"` // unix seconds
	N   int   `json:"n"`
}

type pending struct {
	Doc
	At int64 `json:"at"` // unix seconds
}

// Limits are the admission limits of one submission; 0 = none.
type Limits struct {
	PerMinute int // documents submitted in any 60 s
	InFlight  int // documents not yet analyzed or failed
}

// Admission is a submission counted against its owner's limits.
type Admission struct {
	s     *Store
	key   string
	doc   Doc
	sec   int64
	count bool // it took a place in the window
}

// Admit counts doc, about to be submitted by owner, against the limits,
// or refuses it with *Exceeded. The window and the documents in flight
// are judged together on one compare-and-set of the owner's key: two
// replicas admitting at once cannot both take the last place. Documents
// in flight are counted by inFlight from the read model, which the
// pipeline's events keep exact under redeliveries and crashes, plus the
// submissions it has not projected yet, which this key remembers. Call
// Cancel if doc is not submitted after all.
func (s *Store) Admit(ctx context.Context, owner string, doc Doc, lim Limits, inFlight InFlightFunc) (*Admission, error) {
	k, err := key("uploads", owner)
	if err != nil {
		return nil, err
	}
	a := &Admission{s: s, key: k, doc: doc}
	err = update(ctx, s, k, func(st *uploadsState, now time.Time) (bool, error) {
		sec := now.Unix()
		st.prune(sec)
		if lim.PerMinute > 0 {
			if used := st.used(); used >= lim.PerMinute {
				return false, &Exceeded{Limit: LimitUploads, Max: int64(lim.PerMinute), Used: int64(used),
					RetryAfter: time.Duration(st.freeAt(used, lim.PerMinute)-sec) * time.Second}
			}
		}
		if lim.InFlight > 0 {
			recent := make([]Doc, len(st.Pending))
			for i, p := range st.Pending {
				recent[i] = p.Doc
			}
			n, unseen, err := inFlight(ctx, owner, recent)
			if err != nil {
				return false, fmt.Errorf("documents in flight of %s: %w", owner, err)
			}
			if n >= lim.InFlight {
				// Nothing tells when a document will finish: analyses take
				// seconds to minutes.
				return false, &Exceeded{Limit: LimitInFlight, Max: int64(lim.InFlight), Used: int64(n), RetryAfter: 30 * time.Second}
			}
			st.Pending = slices.DeleteFunc(st.Pending, func(p pending) bool { return !slices.Contains(unseen, p.Doc) })
		}
		a.sec, a.count = sec, lim.PerMinute > 0
		if a.count {
			st.add(sec)
		}
		if lim.InFlight > 0 && !slices.ContainsFunc(st.Pending, func(p pending) bool { return p.Doc == doc }) {
			// (A run submitted twice at once, two re-analyses racing, is
			// one run: the event is stored once.)
			st.Pending = append(st.Pending, pending{Doc: doc, At: sec})
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Cancel gives back the place of a submission that did not happen (the
// upload was refused or failed): it leaves the window and is no longer
// in flight.
func (a *Admission) Cancel(ctx context.Context) error {
	return update(ctx, a.s, a.key, func(st *uploadsState, now time.Time) (bool, error) {
		st.prune(now.Unix())
		before := len(st.Pending)
		st.Pending = slices.DeleteFunc(st.Pending, func(p pending) bool { return p.Doc == a.doc })
		refunded := false
		if a.count {
			if i := slices.IndexFunc(st.Bins, func(b bin) bool { return b.Sec == a.sec }); i >= 0 {
				if st.Bins[i].N--; st.Bins[i].N <= 0 {
					st.Bins = slices.Delete(st.Bins, i, i+1)
				}
				refunded = true
			}
		}
		return refunded || len(st.Pending) != before, nil
	})
}

// prune drops seconds that have left the window and submissions pending
// for too long.
func (st *uploadsState) prune(sec int64) {
	oldest := sec - (Window - 1)
	st.Bins = slices.DeleteFunc(st.Bins, func(b bin) bool { return b.Sec < oldest })
	st.Pending = slices.DeleteFunc(st.Pending, func(p pending) bool { return sec-p.At > int64(pendingFor/time.Second) })
}

func (st *uploadsState) used() int {
	n := 0
	for _, b := range st.Bins {
		n += b.N
	}
	return n
}

func (st *uploadsState) add(sec int64) {
	if n := len(st.Bins); n > 0 && st.Bins[n-1].Sec == sec {
		st.Bins[n-1].N++
		return
	}
	st.Bins = append(st.Bins, bin{Sec: sec, N: 1})
}

// freeAt is the second at which enough old seconds have left the window
// for one more upload to fit under limit.
func (st *uploadsState) freeAt(used, limit int) int64 {
	excess := used + 1 - limit
	for _, b := range st.Bins {
		if excess -= b.N; excess <= 0 {
			return b.Sec + Window
		}
	}
	return st.Bins[len(st.Bins)-1].Sec + Window
}
