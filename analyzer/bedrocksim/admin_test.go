package bedrocksim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/analyzer/bedrocksim"
)

func adminDo(t *testing.T, method, url, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

func TestStormThroughAdminEndpoint(t *testing.T) {
	clock := newFakeClock()
	sim, ts := startSim(t, bedrocksim.Config{Clock: clock})
	c := client(ts.URL, testKey, testSecret)

	plan := `{"` + haiku3 + `": {"storm": {"kind": "throttle", "seconds": 10}}}`
	if code := adminDo(t, "POST", ts.URL+"/_sim/faults", plan, nil); code != 200 {
		t.Fatalf("POST /_sim/faults: %d", code)
	}
	var got map[string]bedrocksim.Faults
	adminDo(t, "GET", ts.URL+"/_sim/faults", "", &got)
	if s := got[haiku3].Storm; s == nil || !s.End.Equal(clock.Now().Add(10*time.Second)) {
		t.Fatalf("GET /_sim/faults = %+v", got)
	}
	if _, err := converse(c, haiku3, "hi", 0); throttleMessage(err) == "" {
		t.Fatalf("during storm: %v", err)
	}
	if _, err := converse(c, sonnet45, "hi", 0); err != nil {
		t.Fatalf("other model hit by storm: %v", err)
	}
	clock.Advance(10 * time.Second)
	if _, err := converse(c, haiku3, "hi", 0); err != nil {
		t.Fatalf("after storm: %v", err)
	}
	if th := sim.Stats().Models[haiku3].Throttles; th["storm"] != 1 {
		t.Errorf("throttles = %v", th)
	}

	if code := adminDo(t, "POST", ts.URL+"/_sim/faults", `{"*": {"throttle": 2}}`, nil); code != 400 {
		t.Errorf("invalid probability accepted: %d", code)
	}
	if code := adminDo(t, "POST", ts.URL+"/_sim/faults", `{"*": {"throtle": 0.5}}`, nil); code != 400 {
		t.Errorf("unknown field accepted: %d", code)
	}
	adminDo(t, "POST", ts.URL+"/_sim/faults", `{"*": {"unavailable": 1}}`, nil)
	if _, err := converse(c, sonnet45, "hi", 0); apiCode(err) != "ServiceUnavailableException" {
		t.Fatalf("wildcard fault: %v", err)
	}
	adminDo(t, "DELETE", ts.URL+"/_sim/faults", "", nil)
	if _, err := converse(c, sonnet45, "hi", 0); err != nil {
		t.Fatalf("after DELETE: %v", err)
	}
}

func TestFaultsAreDeterministicWithSeed(t *testing.T) {
	outcomes := func() string {
		_, ts := startSim(t, bedrocksim.Config{Seed: 7, Faults: map[string]bedrocksim.Faults{"*": {Throttle: 0.3, Internal: 0.2}}})
		c := client(ts.URL, testKey, testSecret)
		var b strings.Builder
		for range 30 {
			_, err := converse(c, haiku3, "hi", 0)
			b.WriteString(apiCode(err) + ".")
		}
		return b.String()
	}
	a, b := outcomes(), outcomes()
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if !strings.Contains(a, "ThrottlingException") || !strings.Contains(a, "InternalServerException") || !strings.Contains(a, "..") {
		t.Fatalf("expected a mix of outcomes: %s", a)
	}
}

func TestStatsEndpointAndReset(t *testing.T) {
	_, ts := startSim(t, bedrocksim.Config{})
	c := client(ts.URL, testKey, testSecret)
	for range 3 {
		if _, err := converse(c, sonnet45, "hello", 0); err != nil {
			t.Fatal(err)
		}
	}
	var st bedrocksim.Stats
	adminDo(t, "GET", ts.URL+"/_sim/stats", "", &st)
	m := st.Models[sonnet45]
	if m.Requests != 3 || m.Successes != 3 || m.PeakRequestsPer60s != 3 || m.InputTokens != 6 || m.OutputTokens == 0 ||
		m.PeakTokensPer60s != m.InputTokens+m.OutputTokens || m.InFlight != 0 || m.PeakInFlight != 1 {
		t.Fatalf("stats = %+v", m)
	}
	if len(st.Models) != 7 {
		t.Errorf("stats cover %d models, want the 7 defaults", len(st.Models))
	}
	adminDo(t, "POST", ts.URL+"/_sim/reset", "", nil)
	adminDo(t, "GET", ts.URL+"/_sim/stats", "", &st)
	if m := st.Models[sonnet45]; m.Requests != 0 || m.PeakRequestsPer60s != 0 || m.InputTokens != 0 {
		t.Fatalf("after reset: %+v", m)
	}
	var health map[string]string
	if code := adminDo(t, "GET", ts.URL+"/healthz", "", &health); code != 200 || health["status"] != "ok" {
		t.Fatalf("healthz: %d %v", code, health)
	}
}

func TestPeakWindowSlides(t *testing.T) {
	clock := newFakeClock()
	sim, ts := startSim(t, bedrocksim.Config{Clock: clock})
	c := client(ts.URL, testKey, testSecret)
	for i := range 6 { // one request every 20 s: at most 3 in any 60 s window
		if _, err := converse(c, haiku3, "hi", 0); err != nil {
			t.Fatal(err)
		}
		if i < 5 {
			clock.Advance(20 * time.Second)
		}
	}
	if p := sim.Stats().Models[haiku3].PeakRequestsPer60s; p != 3 {
		t.Fatalf("peak = %d, want 3", p)
	}
}
