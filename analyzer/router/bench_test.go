package router_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/nats-io/nats.go/jetstream"
)

// instant answers at once: the benchmark measures the router's own cost
// (choosing a model, reserving and settling in the shared state), not a
// model's latency.
type instant struct{}

func (instant) Converse(ctx context.Context, in *bedrockruntime.ConverseInput, _ ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseOutput, error) {
	return &bedrockruntime.ConverseOutput{
		Output:     &types.ConverseOutputMemberMessage{Value: types.Message{Role: types.ConversationRoleAssistant}},
		StopReason: types.StopReasonEndTurn,
		Usage:      &types.TokenUsage{InputTokens: aws.Int32(100), OutputTokens: aws.Int32(50)},
	}, nil
}

// ConverseStream is not what the benchmark measures; the SDK offers no way
// to build a stream without a connection.
func (instant) ConverseStream(context.Context, *bedrockruntime.ConverseStreamInput, ...func(*bedrockruntime.Options)) (*bedrockruntime.ConverseStreamOutput, error) {
	return nil, errors.New("instant answers Converse only")
}

// BenchmarkRouterOverhead prints the router's added latency per call, p50
// and p99, for one replica and for three replicas sharing state through
// one NATS server (each with its own connection, as separate processes
// would have).
//
// Unpaced, every replica calls back to back: the router itself is the
// bottleneck and the replicas collide on one model's key all the time.
// Paced at 1,000 calls/s in all (forty times the default chain's whole
// Bedrock quota of 1,400 requests/min), it shows the overhead at a rate a
// deployment can actually reach.
func BenchmarkRouterOverhead(b *testing.B) {
	for _, tc := range []struct {
		replicas int
		rate     float64 // calls/s in all; 0 = unpaced
	}{{1, 0}, {3, 0}, {1, 1000}, {3, 1000}} {
		replicas := tc.replicas
		name := fmt.Sprintf("replicas=%d/unpaced", replicas)
		if tc.rate > 0 {
			name = fmt.Sprintf("replicas=%d/rate=%.0f", replicas, tc.rate)
		}
		b.Run(name, func(b *testing.B) {
			ns, _, _ := testenv.NATS(b)
			chain := router.DefaultChain()
			for i := range chain {
				chain[i].RequestsPerMinute, chain[i].TokensPerMinute = 1<<30, 1<<40
			}
			var routers []*router.Router
			for range replicas {
				nc, err := ns.Connect()
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				js, _ := jetstream.New(nc)
				shared, err := createShared(context.Background(), js, "bench", 1, nil)
				if err != nil {
					b.Fatal(err)
				}
				r, err := router.New(chain, shared, instant{}, router.Options{}, nil)
				if err != nil {
					b.Fatal(err)
				}
				routers = append(routers, r)
			}
			// One request at a time per replica: the latency the router adds
			// to a call, not the queueing of an artificial overload.
			req := chatRequest(false)
			lat := make([][]time.Duration, replicas)
			var wg sync.WaitGroup
			b.ResetTimer()
			for i, r := range routers {
				n := b.N / replicas
				wg.Add(1)
				go func() {
					defer wg.Done()
					var tick <-chan time.Time
					if tc.rate > 0 {
						t := time.NewTicker(time.Duration(float64(replicas) / tc.rate * float64(time.Second)))
						defer t.Stop()
						tick = t.C
					}
					for range n {
						if tick != nil {
							<-tick
						}
						start := time.Now()
						if _, err := r.Converse(context.Background(), req); err != nil {
							b.Error(err)
							return
						}
						lat[i] = append(lat[i], time.Since(start))
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			if len(all) > 0 {
				b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}
