package streams

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// BatchHandler applies several events at once, e.g. in one database
// transaction. It returns nil only once every effect is durable.
type BatchHandler func(ctx context.Context, evs []*Event) error

// BatchOptions configure RunBatch.
type BatchOptions struct {
	RunnerOptions
	Size int           // most events per batch
	Wait time.Duration // how long a started batch waits for more events
}

// RunBatch is Run for handlers that gain from batching (the projector:
// one commit for many events). Events are gathered while they arrive, up
// to Size or Wait, and handed over together; on success each is acked. If
// a batch fails, its events are handled one by one through single, with
// Run's rules, so one bad event cannot hold up the others and gets its own
// retry or dead letter.
func RunBatch(ctx context.Context, js jetstream.JetStream, c Consumer, batch BatchHandler, single Handler, o BatchOptions) error {
	if o.Size <= 0 {
		o.Size = 100
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Millisecond
	}
	ss, err := open(ctx, js, c, o.RunnerOptions, func(opts RunnerOptions) int { return o.Size * opts.Concurrency })
	if err != nil {
		return err
	}
	defer ss.close()
	it, opts, log, workCtx := ss.it, ss.opts, ss.log, ss.workCtx

	r := &runner{c: c, opts: opts, log: log, prepare: eventPreparer(c, single)}
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		sem <- struct{}{}
		msgs, closed := gather(it, o.Size, o.Wait)
		if ctx.Err() != nil {
			// Fetched before the drain but not started: not ours to begin.
			for _, m := range msgs {
				r.handBack(m)
			}
			msgs = nil
		}
		if len(msgs) > 0 {
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				r.handleBatch(workCtx, msgs, batch)
			}()
		} else {
			<-sem
		}
		if closed {
			log.Info().Msg("consumer drained")
			return nil
		}
	}
}

// gather waits for one message, then takes more while they come within
// wait, up to size. closed reports that the iterator has ended.
func gather(it jetstream.MessagesContext, size int, wait time.Duration) (msgs []jetstream.Msg, closed bool) {
	for len(msgs) < size {
		var m jetstream.Msg
		var err error
		if len(msgs) == 0 {
			m, err = it.Next()
		} else {
			m, err = it.Next(jetstream.NextMaxWait(wait))
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return msgs, true
		}
		if err != nil {
			return msgs, false // a timeout ends the batch; other errors recover by themselves
		}
		msgs = append(msgs, m)
	}
	return msgs, false
}

// handleBatch decodes msgs, hands the good ones to batch and acks them, and
// falls back to one-by-one handling when the batch fails.
func (r *runner) handleBatch(ctx context.Context, msgs []jetstream.Msg, batch BatchHandler) {
	evs := make([]*Event, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		ev, perr := ParseEvent(m.Subject(), m.Data())
		if err != nil || perr != nil {
			r.handle(ctx, m) // terminates it with the reason, as Run does
			continue
		}
		ev.Seq = md.Sequence.Stream
		evs = append(evs, ev)
		good = append(good, m)
	}
	if len(evs) == 0 {
		return
	}
	start := time.Now()
	err := safeCall(ctx, func(ctx context.Context) error { return batch(ctx, evs) })
	if m := r.opts.Metrics; m != nil {
		m.duration.WithLabelValues(r.c.Name).Observe(time.Since(start).Seconds())
	}
	if err != nil {
		r.log.Warn().Err(err).Int("events", len(evs)).Msg("batch failed; handling its events one by one")
		for _, m := range good {
			r.handle(ctx, m)
		}
		return
	}
	for _, m := range good {
		// The batch is committed: an ack lost here only means a redelivery
		// that changes nothing.
		_ = m.Ack()
		r.opts.Metrics.outcome(r.c.Name, "ack")
	}
}
