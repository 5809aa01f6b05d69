package quota_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
)

// An owner's daily count is one counter whose record stays the same size
// however many runs it counted: every count used to read and rewrite a
// record of the deliveries it had counted, so each count of a busy day
// cost more than the one before. Counting stays exact: a repeat counts
// nothing, a redelivery counts, and the record in the older form (a KV
// key per owner and day) is carried over once.
func TestBudgetCountIsOneFixedSizeRecord(t *testing.T) {
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
	day := clock.Now().UTC().Format("20060102")
	// A record in the older form: 5 tokens counted before the counter.
	if _, err := kv.Put(ctx, "tokens.alice."+day, []byte(`{"used":5,"seen":{"doc-0.1#1":1}}`)); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, quota.UsageStream)
	if err != nil {
		t.Fatal(err)
	}
	subject := quota.UsageRoot + ".alice." + day
	last := func() []byte {
		t.Helper()
		m, err := stream.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		return m.Data
	}
	b := s.Budget(1 << 40)
	const runs = 180 // one a minute for three hours
	var first []byte
	for i := 1; i <= runs; i++ {
		clock.Add(time.Minute)
		for range 2 { // a retried count
			if err := b.Spend(ctx, "alice", "doc-"+strconv.Itoa(i), 1, 1, 10); err != nil {
				t.Fatal(err)
			}
		}
		if i == 100 {
			first = last()
		}
	}
	want := int64(5 + runs*10)
	if used, err := b.Used(ctx, "alice"); err != nil || used != want {
		t.Fatalf("used %d (%v), want %d", used, err, want)
	}
	if rec := last(); string(rec) != `{"val":"`+strconv.FormatInt(want, 10)+`"}` || len(rec) != len(first) {
		t.Fatalf("the record after %d runs is %q (%d bytes; %q after 100 runs); want the total alone", runs, rec, len(rec), first)
	}
	if _, err := kv.Get(ctx, "tokens.alice."+day); err == nil {
		t.Fatal("the older record is still there after it was carried over")
	}
	// Repeating the newest run counts nothing; its redelivery counts.
	if err := b.Spend(ctx, "alice", "doc-"+strconv.Itoa(runs), 1, 1, 10); err != nil {
		t.Fatal(err)
	}
	if used, _ := b.Used(ctx, "alice"); used != want {
		t.Fatalf("a repeated count of the newest run counted: used %d, want %d", used, want)
	}
	if err := b.Spend(ctx, "alice", "doc-"+strconv.Itoa(runs), 1, 2, 10); err != nil {
		t.Fatal(err)
	}
	if used, _ := b.Used(ctx, "alice"); used != want+10 {
		t.Fatalf("a redelivery of the newest run: used %d, want %d", used, want+10)
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
