package router_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/analyzer/bedrocksim"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/rs/zerolog"
)

// world is a simulator and the routers' shared state sharing one scaled
// clock, so a test can live through minutes of quota time in seconds.
type world struct {
	t      *testing.T
	clock  router.ScaledClock
	sim    *bedrocksim.Server
	simURL string
	state  state
	opened int // replicas opened so far: the next one connects to the next node
}

// spec is one model as both the simulator (its real quota) and the
// router (its configured limit) see it.
type spec struct {
	id          string
	simRPM      int
	routerRPM   int
	cooldownSec float64
	tpm         int // tokens/min, the simulator's and the router's (0: unbounded)
}

func (s spec) tokensPerMinute() int {
	if s.tpm > 0 {
		return s.tpm
	}
	return 100_000_000
}

// newWorld is newWorldOn a NATS server of the test's own.
func newWorld(t *testing.T, factor float64, specs []spec) *world {
	t.Helper()
	return newWorldOn(t, oneNode(t, "router_test"), factor, specs)
}

func newWorldOn(t *testing.T, st state, factor float64, specs []spec) *world {
	t.Helper()
	clock := router.ScaledClock{Start: time.Now(), Factor: factor}
	var models []bedrocksim.Model
	for _, s := range specs {
		models = append(models, bedrocksim.Model{ID: s.id, RequestsPerMinute: s.simRPM, TokensPerMinute: s.tokensPerMinute(), ContextWindow: 200_000, MaxOutputTokens: 4096})
	}
	sim, err := bedrocksim.New(bedrocksim.Config{Models: models, Speed: 0, AccessKey: "AKTEST", SecretKey: "secret", Seed: 1, Clock: clock}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	return &world{t: t, clock: clock, sim: sim, simURL: hs.URL, state: st}
}

func chainOf(specs []spec) router.Chain {
	var c router.Chain
	for _, s := range specs {
		c = append(c, router.Model{ID: s.id, Name: s.id, RequestsPerMinute: s.routerRPM, TokensPerMinute: s.tokensPerMinute(),
			CooldownSeconds: s.cooldownSec, ContextTokens: 200_000, MaxOutputTokens: 4096, OutputBurndown: 1})
	}
	return c
}

// replica is one analyzer process: its own NATS connection (on a
// cluster, to the next node) and client.
func (w *world) replica(chain router.Chain, maxWait time.Duration) *router.Router {
	r, _ := w.replicaWith(chain, router.Options{MaxWait: maxWait}, nil)
	return r
}

// replicaWith is replica with options and metrics; it also returns the
// replica's view of the shared state.
func (w *world) replicaWith(chain router.Chain, opts router.Options, metrics *router.Metrics) (*router.Router, *router.Shared) {
	w.t.Helper()
	shared := w.state.open(w.t, w.opened, w.clock)
	w.opened++
	client, err := bedrock.NewClient(context.Background(), bedrock.Config{Region: "us-east-1", Endpoint: w.simURL, AccessKeyID: "AKTEST", SecretAccessKey: "secret", Timeout: 10 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	opts.Clock = w.clock
	r, err := router.New(chain, shared, client, opts, metrics)
	if err != nil {
		w.t.Fatal(err)
	}
	return r, shared
}

func chatRequest(interactive bool) router.Request {
	text := "What does an indemnity clause mean for our liability?"
	return router.Request{
		Interactive:     interactive,
		InputTokens:     router.EstimateTokens(text),
		MaxOutputTokens: 64,
		Build: func(m router.Model, maxOut int) *bedrockruntime.ConverseInput {
			return &bedrockruntime.ConverseInput{
				ModelId:         aws.String(m.ID),
				Messages:        []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: text}}}},
				InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(int32(maxOut))},
			}
		},
	}
}

// tally counts what a load run saw.
type tally struct {
	ok, busy, failed atomic.Int64
	mu               sync.Mutex
	byModel          map[string]int
	firstErr         error
	served           []served
}

type served struct {
	at    time.Time
	model string
}

func (ta *tally) record(at time.Time, res *router.Result, err error) {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.byModel == nil {
		ta.byModel = map[string]int{}
	}
	if err == nil {
		ta.byModel[res.Model.ID]++
		ta.served = append(ta.served, served{at, res.Model.ID})
	} else if ta.firstErr == nil {
		ta.firstErr = err
	}
}

// complete runs one request to completion the way the analyzer stage does:
// a BusyError means "come back after RetryAfter" (the event is redelivered
// with that delay), other errors mean retry with backoff. It fails only on
// a permanent error.
func (w *world) complete(ctx context.Context, r *router.Router, req router.Request, ta *tally) {
	w.completeCall(ctx, func(ctx context.Context) (*router.Result, error) { return r.Converse(ctx, req) }, ta)
}

// completeCall is complete for any call of the router.
func (w *world) completeCall(ctx context.Context, call func(context.Context) (*router.Result, error), ta *tally) {
	for ctx.Err() == nil {
		res, err := call(ctx)
		var busy *router.BusyError
		var perm *router.PermanentError
		switch {
		case err == nil:
			ta.ok.Add(1)
			ta.record(w.clock.Now(), res, nil)
			return
		case errors.As(err, &busy):
			ta.busy.Add(1)
			_ = w.clock.Sleep(ctx, busy.RetryAfter)
		case errors.As(err, &perm), errors.Is(err, router.ErrTooLarge):
			ta.failed.Add(1)
			ta.record(w.clock.Now(), nil, err)
			return
		default:
			if ctx.Err() != nil {
				return
			}
			_ = w.clock.Sleep(ctx, time.Second)
		}
	}
}

// saturate keeps workers busy with requests until ctx ends.
func (w *world) saturate(ctx context.Context, routers []*router.Router, workers int, ta *tally) {
	var wg sync.WaitGroup
	for i := range workers {
		r := routers[i%len(routers)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				w.complete(ctx, r, chatRequest(false), ta)
			}
		}()
	}
	wg.Wait()
}

func (w *world) stats() bedrocksim.Stats { return w.sim.Stats() }

func describe(st bedrocksim.Stats) string {
	s := ""
	for id, m := range st.Models {
		s += fmt.Sprintf("\n  %s: requests %d ok %d throttles %v errors %v peak60s %d", id, m.Requests, m.Successes, m.Throttles, m.Errors, m.PeakRequestsPer60s)
	}
	return s
}
