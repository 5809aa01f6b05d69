package bedrocksim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/aiprism/prism/analyzer/bedrocksim"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultModels(t *testing.T) {
	want := []string{
		"us.anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-sonnet-4-20250514-v1:0",
		"us.anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic.claude-3-5-sonnet-20241022-v2:0",
		"anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-haiku-20240307-v1:0",
		"us.anthropic.claude-haiku-4-5-20251001-v1:0",
	}
	ms := bedrocksim.DefaultModels()
	if len(ms) != len(want) {
		t.Fatalf("%d models", len(ms))
	}
	for i, m := range ms {
		if m.ID != want[i] || m.ContextWindow != 200000 || m.RequestsPerMinute != 200 {
			t.Errorf("model %d = %+v", i, m)
		}
		claude4 := strings.Contains(m.ID, "sonnet-4") || strings.Contains(m.ID, "haiku-4")
		if claude4 != (m.OutputBurndown == 5) {
			t.Errorf("%s: burndown %d", m.ID, m.OutputBurndown)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "models.json")
	if err := os.WriteFile(file, []byte(`[{"id":"tiny","requests_per_minute":5}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := bedrocksim.ConfigFromEnv(env(map[string]string{
		"BEDROCKSIM_SPEED": "0.5", "BEDROCKSIM_MODELS_FILE": file, "BEDROCKSIM_TPM": "5000",
		"BEDROCKSIM_ACCESS_KEY_ID": "AK", "BEDROCKSIM_SECRET_ACCESS_KEY": "SK", "BEDROCKSIM_SEED": "9",
		"BEDROCKSIM_FAULTS": `{"tiny":{"throttle":0.25,"storm":{"kind":"unavailable","seconds":5}}}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Speed != 0.5 || len(cfg.Models) != 1 || cfg.Models[0].RequestsPerMinute != 5 || cfg.Models[0].TokensPerMinute != 5000 ||
		cfg.AccessKey != "AK" || cfg.Seed != 9 || cfg.Faults["tiny"].Throttle != 0.25 {
		t.Fatalf("cfg = %+v", cfg)
	}
	sim, err := bedrocksim.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if m := sim.Models()[0]; m.ContextWindow != 200000 || m.TokensPerMinute != 5000 {
		t.Errorf("defaults not applied: %+v", m)
	}

	bad := map[string]map[string]string{
		"BEDROCKSIM_SPEED":       {"BEDROCKSIM_SPEED": "fast"},
		"BEDROCKSIM_SEED":        {"BEDROCKSIM_SEED": "x"},
		"BEDROCKSIM_RPM":         {"BEDROCKSIM_RPM": "-1"},
		"BEDROCKSIM_FAULTS":      {"BEDROCKSIM_FAULTS": `{"*":{"throttle":1.5}}`},
		"BEDROCKSIM_MODELS_FILE": {"BEDROCKSIM_MODELS_FILE": filepath.Join(t.TempDir(), "missing.json")},
		"BEDROCKSIM_SECRET":      {"BEDROCKSIM_ACCESS_KEY_ID": "AK"},
	}
	for name, vars := range bad {
		_, err := bedrocksim.ConfigFromEnv(env(vars))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: err = %v, want it to name %s", vars, err, name)
		}
	}
	if _, err := bedrocksim.New(bedrocksim.Config{Faults: map[string]bedrocksim.Faults{"nope": {}}}, zerolog.Nop()); err == nil {
		t.Error("faults for an unknown model accepted")
	}
}
