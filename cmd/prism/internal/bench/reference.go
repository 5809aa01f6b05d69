package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReferenceResult is raw JetStream on the same server and storage settings
// as the pipeline: the most the engine can do here, to compare against.
type ReferenceResult struct {
	Messages   int     `json:"messages"`
	Publishers int     `json:"publishers"`
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Latency    Summary `json:"publish_to_ack"`
}

// Reference publishes n event-sized messages from concurrent publishers
// (each waiting for its PubAck, as the stages do) into a file-backed
// stream, pull-consumes them with a durable consumer and acknowledges each
// synchronously, as the runner does. It measures from the first publish to
// the last ack.
func Reference(ctx context.Context, js jetstream.JetStream, n, publishers int) (ReferenceResult, error) {
	name := fmt.Sprintf("BENCHREF%d", time.Now().UnixNano())
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"benchref." + name + ".>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return ReferenceResult{}, err
	}
	defer func() { _ = js.DeleteStream(context.WithoutCancel(ctx), name) }()
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "ref", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	if err != nil {
		return ReferenceResult{}, err
	}
	payload := make([]byte, 600) // a typical event envelope
	for i := range payload {
		payload[i] = 'x'
	}
	var lat Latencies
	sent := make([]time.Time, n)
	var acked atomic.Int64
	done := make(chan struct{})
	var sentMu sync.Mutex
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.DoubleAck(ctx)
		subj := m.Subject()
		if i, err := strconv.Atoi(subj[strings.LastIndexByte(subj, '.')+1:]); err == nil && i >= 1 && i <= n {
			sentMu.Lock()
			t := sent[i-1]
			sentMu.Unlock()
			lat.Add(time.Since(t))
		}
		if acked.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(256))
	if err != nil {
		return ReferenceResult{}, err
	}
	defer cc.Stop()

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var pubErr atomic.Value
	for range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				sentMu.Lock()
				sent[i-1] = time.Now()
				sentMu.Unlock()
				if _, err := js.Publish(ctx, fmt.Sprintf("benchref.%s.%d", name, i), payload, jetstream.WithMsgID(fmt.Sprint(i))); err != nil {
					pubErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := pubErr.Load().(error); err != nil {
		return ReferenceResult{}, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ReferenceResult{}, ctx.Err()
	case <-time.After(2 * time.Minute):
		return ReferenceResult{}, fmt.Errorf("reference: only %d of %d acked", acked.Load(), n)
	}
	secs := time.Since(start).Seconds()
	return ReferenceResult{Messages: n, Publishers: publishers, Seconds: secs, MsgsPerSec: float64(n) / secs, Latency: lat.Summary()}, nil
}
