// Package router sends each model request to the best Bedrock model that
// has capacity, and never past a quota: per-model usage of requests and
// tokens counted in per-second bins over a sliding 60 s window (see
// Window), cooldowns and circuit breakers, all kept in a NATS JetStream
// key-value bucket with compare-and-set, so the limits hold for every
// analyzer replica together, not per process.
package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"
)

// Model is one entry of the fallback chain.
type Model struct {
	ID                string  `json:"id"`
	Name              string  `json:"name"`
	RequestsPerMinute int     `json:"requests_per_minute"`
	TokensPerMinute   int     `json:"tokens_per_minute"`
	CooldownSeconds   float64 `json:"cooldown_seconds"`
	ContextTokens     int     `json:"context_tokens"`
	MaxOutputTokens   int     `json:"max_output_tokens"`
	// OutputBurndown is how many quota tokens one output token costs: 5 for
	// the Claude 4 family on Bedrock, 1 otherwise.
	OutputBurndown   int     `json:"output_burndown"`
	PricePer1kInput  float64 `json:"price_per_1k_input"`
	PricePer1kOutput float64 `json:"price_per_1k_output"`
}

// Cooldown is how long the model rests after a throttle.
func (m Model) Cooldown() time.Duration {
	return time.Duration(m.CooldownSeconds * float64(time.Second))
}

// QuotaTokens is what a call reserves against the tokens-per-minute quota:
// input plus max output weighted by the burndown, as Bedrock reserves it.
func (m Model) QuotaTokens(input, maxOutput int) int {
	return input + maxOutput*max(m.OutputBurndown, 1)
}

// Cost is the price of a call in USD.
func (m Model) Cost(input, output int) float64 {
	return float64(input)/1000*m.PricePer1kInput + float64(output)/1000*m.PricePer1kOutput
}

// Chain is the ordered list of models, best first.
type Chain []Model

// DefaultChain is the original system's seven models in its order, with
// the Bedrock default of 200 requests/min. Token quotas and prices are
// public list figures at the time of writing; set yours in a chain file.
func DefaultChain() Chain {
	m := func(id, name string, tpm, maxOut, burndown int, in, out float64) Model {
		return Model{ID: id, Name: name, RequestsPerMinute: 200, TokensPerMinute: tpm, CooldownSeconds: 30,
			ContextTokens: 200_000, MaxOutputTokens: maxOut, OutputBurndown: burndown, PricePer1kInput: in, PricePer1kOutput: out}
	}
	return Chain{
		m("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "Claude Sonnet 4.5", 200_000, 64_000, 5, 0.003, 0.015),
		m("us.anthropic.claude-sonnet-4-20250514-v1:0", "Claude Sonnet 4", 200_000, 64_000, 5, 0.003, 0.015),
		m("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "Claude 3.7 Sonnet", 200_000, 64_000, 1, 0.003, 0.015),
		m("anthropic.claude-3-5-sonnet-20241022-v2:0", "Claude 3.5 Sonnet v2", 200_000, 8192, 1, 0.003, 0.015),
		m("anthropic.claude-3-5-sonnet-20240620-v1:0", "Claude 3.5 Sonnet", 200_000, 4096, 1, 0.003, 0.015),
		m("anthropic.claude-3-haiku-20240307-v1:0", "Claude 3 Haiku", 200_000, 4096, 1, 0.00025, 0.00125),
		m("us.anthropic.claude-haiku-4-5-20251001-v1:0", "Claude Haiku 4.5", 200_000, 64_000, 5, 0.001, 0.005),
	}
}

// LoadChain reads a chain from a JSON file: an array of Model, best first.
func LoadChain(path string) (Chain, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c Chain
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return c, c.Validate()
}

// Validate reports every problem of the chain, naming the model.
func (c Chain) Validate() error {
	if len(c) == 0 {
		return errors.New("the model chain is empty")
	}
	var errs []error
	seen := map[string]bool{}
	for i, m := range c {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("model %d (%s): %s", i+1, m.ID, fmt.Sprintf(format, args...)))
		}
		switch {
		case m.ID == "":
			bad("id is empty")
		case seen[m.ID]:
			bad("listed twice")
		}
		seen[m.ID] = true
		if m.RequestsPerMinute <= 0 {
			bad("requests_per_minute must be positive")
		}
		if m.TokensPerMinute <= 0 {
			bad("tokens_per_minute must be positive")
		}
		if m.ContextTokens <= 0 {
			bad("context_tokens must be positive")
		}
		if m.MaxOutputTokens <= 0 {
			bad("max_output_tokens must be positive")
		}
		if m.CooldownSeconds < 0 || m.OutputBurndown < 0 || m.PricePer1kInput < 0 || m.PricePer1kOutput < 0 {
			bad("cooldown, burndown and prices cannot be negative")
		}
	}
	return errors.Join(errs...)
}

// EstimateTokens estimates the tokens of s: one per 4 bytes, rounded up,
// the same rule the simulator counts by. Real tokenizers give fewer for
// English, so the estimate errs on the side of reserving too much.
func EstimateTokens(s string) int { return (len(s) + 3) / 4 }
