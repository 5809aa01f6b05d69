package router_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
)

// On a cluster (the bucket replicated three times, as in production) the
// request limit holds exactly when replicas on different servers reserve
// at once: a write racing another one in flight on the same key comes back
// as ErrKeyRevisionMismatch alone, which is a conflict to retry, not a
// failure.
func TestRequestLimitHoldsOnACluster(t *testing.T) {
	ctx := context.Background()
	m := model(20, 1_000_000)
	var rs []*router.Shared
	for _, js := range testenv.NATSCluster(t, 3) {
		s, err := createShared(ctx, js, "cluster", 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, s)
	}
	var granted, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 3 * m.RequestsPerMinute {
		wg.Go(func() {
			res, ref, err := rs[i%3].Reserve(ctx, m, 10, false)
			switch {
			case err != nil:
				t.Errorf("reserve: %v", err)
			case res != nil:
				granted.Add(1)
			case ref != nil:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	if granted.Load() != int64(m.RequestsPerMinute) || refused.Load() != int64(2*m.RequestsPerMinute) {
		t.Fatalf("%d reserved, %d refused; want %d and %d", granted.Load(), refused.Load(), m.RequestsPerMinute, 2*m.RequestsPerMinute)
	}
}
