package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPercentileIsTheNearestRank(t *testing.T) {
	ms := func(n int) []time.Duration {
		d := make([]time.Duration, n)
		for i := range d {
			d[i] = time.Duration(i+1) * time.Millisecond
		}
		return d
	}
	for _, c := range []struct {
		n    int
		q    float64
		want time.Duration
	}{
		{100, 0.50, 50 * time.Millisecond},
		{100, 0.90, 90 * time.Millisecond},
		{100, 0.99, 99 * time.Millisecond}, // not the largest: 1 in 100 is above it
		{100, 0.29, 29 * time.Millisecond}, // 0.29*100 is 28.999... in floating point
		{100, 1, 100 * time.Millisecond},
		{10, 0.99, 10 * time.Millisecond}, // 10 values show no tail rarer than 1 in 10
		{10, 0.50, 5 * time.Millisecond},
		{10, 0.90, 9 * time.Millisecond},
		{1, 0.50, time.Millisecond},
		{1, 0.99, time.Millisecond},
		{0, 0.50, 0},
	} {
		if got := Percentile(ms(c.n), c.q); got != c.want {
			t.Errorf("p%g of 1..%d ms = %s, want %s", 100*c.q, c.n, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	d := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond}
	got := Summarize(d)
	want := Summary{Count: 5, P50: 3, P90: 10, P95: 10, P99: 10, Max: 10, Mean: 4}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if (Summarize(nil) != Summary{}) {
		t.Errorf("Summarize of nothing = %+v, want zeros", Summarize(nil))
	}
	if a := addedBetween(Summary{P50: 1210, P99: 1250}, Summary{P50: 1201.5, P99: 1203}); a != (Added{P50: 8.5, P99: 47}) {
		t.Errorf("added = %+v", a)
	}
}

func TestReadSSE(t *testing.T) {
	stream := "retry: 2000\n\n" +
		": heartbeat\n\n" +
		"id: 7\nevent: question\ndata: {\"a\":1}\n\n" +
		"event: delta\ndata: first line\ndata: second line\n\n" + // the id carries over
		"id: 8\ndata:no space\n\n" +
		"id: 9\nevent: answer\ndata: {}\n\n" +
		"id: 10\nevent: after-stop\ndata: {}\n\n"
	var got []string
	err := readSSE(strings.NewReader(stream), func(f sseFrame) bool {
		if f.at.IsZero() {
			t.Errorf("event %q without its arrival time", f.event)
		}
		got = append(got, f.id+"|"+f.event+"|"+f.data)
		return f.event != "answer"
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`7|question|{"a":1}`, "7|delta|first line\nsecond line", "8||no space", "9|answer|{}"}
	if strings.Join(got, "\n--\n") != strings.Join(want, "\n--\n") {
		t.Errorf("events:\n%q\nwant\n%q", got, want)
	}
}
