package bedrocksim_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/rs/zerolog"

	"github.com/aiprism/prism/analyzer/bedrocksim"
)

// BenchmarkConverse measures the simulator's own throughput: parallel forced
// tool-use Converse calls for a risk assessment of a contract, through the
// official client over loopback, with SigV4 verification on and no latency.
func BenchmarkConverse(b *testing.B) {
	const model = "bench"
	sim, err := bedrocksim.New(bedrocksim.Config{
		AccessKey: testKey, SecretKey: testSecret, Seed: 1,
		Models: []bedrocksim.Model{{ID: model, RequestsPerMinute: 1 << 30, TokensPerMinute: 1 << 30}},
	}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	c := client("http://"+ln.Addr().String(), testKey, testSecret)
	in := &bedrockruntime.ConverseInput{
		ModelId:         aws.String(model),
		Messages:        userText(framed(readDoc(b, "contract_en.txt"))),
		InferenceConfig: &types.InferenceConfiguration{MaxTokens: aws.Int32(4000)},
		ToolConfig:      riskToolConfig(),
	}
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Converse(context.Background(), in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	if st := sim.Stats().Models[model]; st.Successes != int64(b.N) {
		b.Errorf("successes %d of %d", st.Successes, b.N)
	}
}
