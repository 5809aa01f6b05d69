package quota

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"sync"
	"time"
)

// ErrLeaseLost: a lease expired before it was refreshed (its holder
// stalled for longer than the lease's TTL) and its place may have been
// taken. The holder should stop what the lease was for.
var ErrLeaseLost = errors.New("lease lost: not refreshed within its lifetime")

// leasesState is one owner's leases of one kind: lease id -> expiry (unix
// nanoseconds). Expired leases are dropped whenever the key is written.
type leasesState struct {
	Leases map[string]int64 `json:"leases,omitempty"`
}

func (st *leasesState) prune(now time.Time) {
	maps.DeleteFunc(st.Leases, func(_ string, exp int64) bool { return exp <= now.UnixNano() })
}

// Lease is one of a limited number of places of a kind (an open event
// stream, a running export) held by an owner. It lives for the store's
// lease TTL after its last refresh: a replica that dies stops refreshing,
// and its leases free themselves.
type Lease struct {
	s       *Store
	key, id string
	stop    chan struct{} // closed by Release: Keep stops refreshing
	once    sync.Once
}

// Acquire takes one of max leases of kind for owner, or refuses with
// *Exceeded (Limit is the kind). Call Keep to refresh it while it is
// used, and Release when done.
func (s *Store) Acquire(ctx context.Context, kind, owner string, max int) (*Lease, error) {
	k, err := key("lease."+kind, owner)
	if err != nil {
		return nil, err
	}
	l := &Lease{s: s, key: k, id: rand.Text(), stop: make(chan struct{})}
	err = update(ctx, s, k, func(st *leasesState, now time.Time) (bool, error) {
		st.prune(now)
		if len(st.Leases) >= max {
			// A place frees when a holder ends, or at the latest when the
			// first lease expires unrefreshed (its holder died).
			first := int64(0)
			for _, exp := range st.Leases {
				if first == 0 || exp < first {
					first = exp
				}
			}
			return false, &Exceeded{Limit: Limit(kind), Max: int64(max), Used: int64(len(st.Leases)),
				RetryAfter: time.Duration(first - now.UnixNano())}
		}
		if st.Leases == nil {
			st.Leases = map[string]int64{}
		}
		st.Leases[l.id] = now.Add(s.leaseTTL).UnixNano()
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// Refresh extends the lease to a full TTL from now, or reports
// ErrLeaseLost if it has expired.
func (l *Lease) Refresh(ctx context.Context) error {
	return update(ctx, l.s, l.key, func(st *leasesState, now time.Time) (bool, error) {
		if exp, ok := st.Leases[l.id]; !ok || exp <= now.UnixNano() {
			return false, ErrLeaseLost
		}
		st.prune(now)
		st.Leases[l.id] = now.Add(l.s.leaseTTL).UnixNano()
		return true, nil
	})
}

// Keep refreshes the lease every third of its TTL until Release. If the
// lease is lost, lost is called (once) and refreshing stops. A refresh
// that fails otherwise (NATS unreachable for a moment) is tried again at
// the next tick; the lease survives as long as one in three succeeds.
func (l *Lease) Keep(lost func()) {
	go func() {
		tick := time.NewTicker(l.s.leaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), l.s.leaseTTL/3)
			err := l.Refresh(ctx)
			cancel()
			if errors.Is(err, ErrLeaseLost) {
				lost()
				return
			}
		}
	}()
}

// Release gives the lease back at once (stopping Keep), so the place is
// free for the owner's next request on any replica. Releasing twice does
// nothing.
func (l *Lease) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		err = update(ctx, l.s, l.key, func(st *leasesState, now time.Time) (bool, error) {
			_, held := st.Leases[l.id]
			delete(st.Leases, l.id)
			st.prune(now)
			return held, nil
		})
	})
	return err
}
