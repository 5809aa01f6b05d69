package api_test

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// heapWatch samples the bytes of heap objects (live and not yet swept,
// runtime.MemStats.HeapAlloc) until stopped.
type heapWatch struct {
	done      chan struct{}
	wg        sync.WaitGroup
	base      uint64
	peak      uint64
	gcPercent int // restored by stop
}

const heapObjects = "/memory/classes/heap/objects:bytes"

// watchHeap starts sampling every interval, from a freshly collected heap.
//
// While it watches, the collector runs at 10% growth instead of 100%: at
// the default, garbage up to the size of everything live is allowed before
// a collection, so the peak would say more about what else the test
// process holds (earlier tests, a busy machine) than about what the code
// under test keeps.
func watchHeap(interval time.Duration) *heapWatch {
	w := &heapWatch{done: make(chan struct{}), gcPercent: debug.SetGCPercent(10)}
	runtime.GC()
	w.base = readHeap()
	w.peak = w.base
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
				w.peak = max(w.peak, readHeap())
			}
		}
	}()
	return w
}

// stop ends sampling and returns the peak growth over the starting heap.
func (w *heapWatch) stop() uint64 {
	close(w.done)
	w.wg.Wait()
	w.peak = max(w.peak, readHeap())
	debug.SetGCPercent(w.gcPercent)
	return w.peak - w.base
}

func readHeap() uint64 {
	s := []metrics.Sample{{Name: heapObjects}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
