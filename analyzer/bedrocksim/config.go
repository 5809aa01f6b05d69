package bedrocksim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// Model describes one simulated foundation model: its limits, its quota and
// how fast it "thinks". JSON names are what BEDROCKSIM_MODELS_FILE uses; zero
// values are replaced by the defaults documented on each field.
type Model struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	ContextWindow     int    `json:"context_window"`      // input tokens; default 200000
	MaxOutputTokens   int    `json:"max_output_tokens"`   // default 4096
	RequestsPerMinute int    `json:"requests_per_minute"` // default 200
	TokensPerMinute   int    `json:"tokens_per_minute"`   // default 200000
	// TokensPerDay caps the quota-weighted tokens per UTC day; beyond it
	// requests get ServiceQuotaExceededException. 0 means no daily cap.
	TokensPerDay int `json:"tokens_per_day,omitempty"`
	// OutputBurndown is how many quota tokens one output token costs:
	// Bedrock charges 5 for the Claude 4 family. Default 1.
	OutputBurndown int `json:"output_burndown"`
	// TimeToFirstTokenMs and TokensPerSecond make up the latency model,
	// scaled by Config.Speed. Defaults 500 ms and 80 tokens/s.
	TimeToFirstTokenMs int     `json:"time_to_first_token_ms"`
	TokensPerSecond    float64 `json:"tokens_per_second"`
	// AccessDenied simulates a model whose access was not granted to the
	// account: every call gets AccessDeniedException.
	AccessDenied bool `json:"access_denied,omitempty"`
}

// Clock tells the time. It drives quota refill, storms, daily caps and
// the stats windows, so tests can move time by hand. Latency waits use real
// timers (scaled by Config.Speed) because they model delay seen by a client.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Config configures a Server. The zero value plus Models is usable.
type Config struct {
	// Models is the catalogue; nil means DefaultModels().
	Models []Model
	// Speed multiplies every simulated latency: 1 is realistic, 0 answers
	// at once (tests), 0.1 is ten times faster than real.
	Speed float64
	// AccessKey and SecretKey, when both set, make the server verify SigV4
	// signatures. Otherwise any well-formed Authorization header passes.
	AccessKey, SecretKey string
	// Region is the region signatures must be scoped to when verified;
	// empty accepts any region.
	Region string
	// Seed makes fault injection reproducible; 0 picks a random seed.
	Seed int64
	// Faults are the fault settings at start, by model id ("*" = all).
	Faults map[string]Faults
	// Clock and Rand replace the real clock and random source (tests).
	Clock Clock
	Rand  rand.Source
}

// DefaultModels returns the seven Claude models of the original system, in
// its order, with their real Bedrock ids and context windows. Quotas are the
// simulator's defaults (200 requests/min, 200000 tokens/min); output limits
// and speeds are rough public figures.
func DefaultModels() []Model {
	m := func(id, name string, maxOut, burndown, ttft int, tps float64) Model {
		return Model{ID: id, Name: name, ContextWindow: 200000, MaxOutputTokens: maxOut,
			RequestsPerMinute: 200, TokensPerMinute: 200000, OutputBurndown: burndown,
			TimeToFirstTokenMs: ttft, TokensPerSecond: tps}
	}
	return []Model{
		m("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", 64000, 5, 1200, 60),
		m("us.anthropic.claude-sonnet-4-20250514-v1:0", "Claude Sonnet 4", 64000, 5, 1100, 65),
		m("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "Claude 3.7 Sonnet", 64000, 1, 1000, 70),
		m("anthropic.claude-3-5-sonnet-20241022-v2:0", "Claude 3.5 Sonnet v2", 8192, 1, 900, 75),
		m("anthropic.claude-3-5-sonnet-20240620-v1:0", "Claude 3.5 Sonnet", 4096, 1, 900, 75),
		m("anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", 4096, 1, 400, 130),
		m("us.anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", 64000, 5, 500, 120),
	}
}

// withDefaults fills zero fields of m with the documented defaults.
func (m Model) withDefaults() Model {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&m.ContextWindow, 200000)
	def(&m.MaxOutputTokens, 4096)
	def(&m.RequestsPerMinute, 200)
	def(&m.TokensPerMinute, 200000)
	def(&m.OutputBurndown, 1)
	def(&m.TimeToFirstTokenMs, 500)
	if m.TokensPerSecond <= 0 {
		m.TokensPerSecond = 80
	}
	if m.Name == "" {
		m.Name = m.ID
	}
	return m
}

// ConfigFromEnv reads the simulator's settings from environment variables
// through getenv (os.Getenv in production):
//
//	BEDROCKSIM_SPEED              latency multiplier, float >= 0 (default 1)
//	BEDROCKSIM_MODELS_FILE        path of a JSON array of Model (default: DefaultModels)
//	BEDROCKSIM_RPM, BEDROCKSIM_TPM  override every model's requests/tokens per minute
//	BEDROCKSIM_ACCESS_KEY_ID      with the secret, turns on SigV4 verification
//	BEDROCKSIM_SECRET_ACCESS_KEY
//	BEDROCKSIM_REGION             region signatures must be scoped to (default: any)
//	BEDROCKSIM_SEED               int64 seed for fault injection (default random)
//	BEDROCKSIM_FAULTS             JSON object: model id (or "*") -> Faults
//
// The listen address (BEDROCKSIM_ADDR) belongs to the command hosting the
// Server, not to it. Errors name the variable and what was expected.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{Speed: 1}
	if v := getenv("BEDROCKSIM_SPEED"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			return cfg, fmt.Errorf("BEDROCKSIM_SPEED=%q: want a number >= 0 (1 = realistic latency, 0 = none)", v)
		}
		cfg.Speed = f
	}
	if path := getenv("BEDROCKSIM_MODELS_FILE"); path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("BEDROCKSIM_MODELS_FILE: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg.Models); err != nil {
			return cfg, fmt.Errorf("BEDROCKSIM_MODELS_FILE=%s: want a JSON array of models ({\"id\":...,\"requests_per_minute\":...}): %w", path, err)
		}
	}
	for _, o := range []struct {
		name string
		set  func(*Model, int)
	}{
		{"BEDROCKSIM_RPM", func(m *Model, n int) { m.RequestsPerMinute = n }},
		{"BEDROCKSIM_TPM", func(m *Model, n int) { m.TokensPerMinute = n }},
	} {
		v := getenv(o.name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return cfg, fmt.Errorf("%s=%q: want a positive integer", o.name, v)
		}
		if cfg.Models == nil {
			cfg.Models = DefaultModels()
		}
		for i := range cfg.Models {
			o.set(&cfg.Models[i], n)
		}
	}
	cfg.AccessKey = getenv("BEDROCKSIM_ACCESS_KEY_ID")
	cfg.SecretKey = getenv("BEDROCKSIM_SECRET_ACCESS_KEY")
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return cfg, fmt.Errorf("BEDROCKSIM_ACCESS_KEY_ID and BEDROCKSIM_SECRET_ACCESS_KEY: want both set (verify signatures) or both empty")
	}
	cfg.Region = getenv("BEDROCKSIM_REGION")
	if v := getenv("BEDROCKSIM_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return cfg, fmt.Errorf("BEDROCKSIM_SEED=%q: want a 64-bit integer", v)
		}
		cfg.Seed = n
	}
	if v := getenv("BEDROCKSIM_FAULTS"); v != "" {
		f, err := decodeFaults([]byte(v))
		if err != nil {
			return cfg, fmt.Errorf("BEDROCKSIM_FAULTS: want a JSON object of model id (or \"*\") to faults, e.g. {\"*\":{\"throttle\":0.1}}: %w", err)
		}
		for k, x := range f {
			if err := x.validate(); err != nil {
				return cfg, fmt.Errorf("BEDROCKSIM_FAULTS[%q]: %w", k, err)
			}
		}
		cfg.Faults = f
	}
	return cfg, nil
}
