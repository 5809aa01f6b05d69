package quota_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
)

// An owner's daily record remembers the deliveries it counted for an hour,
// not for the whole day: every count rewrites the record, so a record of
// every run of a busy day made each count cost more than the one before.
// Counting stays exact: a repeat within the hour counts nothing, and a
// record in the older form (every delivery of the day) is read and moved.
func TestBudgetRecordKeepsAnHourOfDeliveries(t *testing.T) {
	ctx := context.Background()
	_, _, js := testenv.NATS(t)
	clock := testenv.NewClock()
	// Start the day at 01:00 UTC so that three hours of runs stay in it.
	now := clock.Now().UTC()
	clock.Add(time.Date(now.Year(), now.Month(), now.Day()+1, 1, 0, 0, 0, time.UTC).Sub(now))
	s := openStore(t, js, 1, quota.Config{Now: clock.Now})
	kv, err := js.KeyValue(ctx, quota.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	key := "tokens.alice." + clock.Now().UTC().Format("20060102")
	// A record in the older form: doc-0 run 1 counted at delivery 1.
	if _, err := kv.Put(ctx, key, []byte(`{"used":5,"counted":{"doc-0.1":[1]}}`)); err != nil {
		t.Fatal(err)
	}
	b := s.Budget(1 << 40)
	if err := b.Spend(ctx, "alice", "doc-0", 1, 1, 5); err != nil {
		t.Fatal(err)
	}
	const runs = 180 // one a minute for three hours
	for i := 1; i <= runs; i++ {
		clock.Add(time.Minute)
		for range 2 { // a retried count
			if err := b.Spend(ctx, "alice", "doc-"+strconv.Itoa(i), 1, 1, 10); err != nil {
				t.Fatal(err)
			}
		}
	}
	if used, err := b.Used(ctx, "alice"); err != nil || used != 5+runs*10 {
		t.Fatalf("used %d (%v), want %d", used, err, 5+runs*10)
	}
	entry, err := kv.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Seen    map[string]int64    `json:"seen"`
		Counted map[string][]uint64 `json:"counted"`
	}
	if err := json.Unmarshal(entry.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.Counted) != 0 || len(rec.Seen) > 61 {
		t.Fatalf("the record holds %d deliveries and %d runs of the older form after %d runs a minute apart (%d bytes); want at most an hour's", len(rec.Seen), len(rec.Counted), runs, len(entry.Value()))
	}
	// The newest runs are still remembered: repeating one counts nothing.
	if err := b.Spend(ctx, "alice", "doc-"+strconv.Itoa(runs), 1, 1, 10); err != nil {
		t.Fatal(err)
	}
	if used, _ := b.Used(ctx, "alice"); used != 5+runs*10 {
		t.Fatalf("a repeated count of the newest run counted: used %d", used)
	}
}

// BenchmarkSpend is the cost of one count for one owner, on a fresh day
// and after 2,000 runs of that owner were counted the same day: what the
// analyzer pays per model call under a one-user burst of small documents.
// Run with a fixed count, e.g. -benchtime=500x, so that the record being
// measured is the one named.
func BenchmarkSpend(b *testing.B) {
	for _, counted := range []int{0, 2000} {
		b.Run("counted="+strconv.Itoa(counted), func(b *testing.B) {
			ctx := context.Background()
			_, _, js := testenv.NATS(b)
			budget := openStore(b, js, 1, quota.Config{}).Budget(1 << 40)
			for i := range counted {
				if err := budget.Spend(ctx, "alice", "doc-"+strconv.Itoa(i), 1, 1, 10); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := budget.Spend(ctx, "alice", "next-"+strconv.Itoa(i), 1, 1, 10); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
