package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

type prefs struct {
	Theme string `json:"theme"`
	List  struct {
		Status    string `json:"status"`
		RiskLevel string `json:"risk_level"`
		PageSize  int    `json:"page_size"`
	} `json:"list"`
}

func (e *env) putPrefs(body string, header ...string) response {
	e.t.Helper()
	return e.do(http.MethodPut, "/api/v1/me/preferences", "", strings.NewReader(body), append([]string{"Content-Type", "application/json"}, header...)...)
}

func readPrefs(t *testing.T, r response) prefs {
	t.Helper()
	expect(t, r, http.StatusOK)
	var p prefs
	r.json(t, &p)
	return p
}

// TestPreferences: a user's preferences start at the defaults, are kept
// in PostgreSQL (another replica reads them), are the user's alone, are
// replaced whole (a field left out takes its default), are refused out of
// bounds naming the field, and with a session need the CSRF token.
func TestPreferences(t *testing.T) {
	e := newEnv(t)
	bearer := func(owner string) []string { return []string{"Authorization", "Bearer " + tokenOf(owner)} }
	defaults := readPrefs(t, e.get("/api/v1/me/preferences", alice))
	if defaults.Theme != "system" || defaults.List.Status != "" || defaults.List.RiskLevel != "" || defaults.List.PageSize != 50 {
		t.Fatalf("defaults %+v", defaults)
	}
	want := `{"theme":"dark","list":{"status":"analyzed","risk_level":"high","page_size":100}}`
	if got, _ := json.Marshal(readPrefs(t, e.putPrefs(want, bearer(alice)...))); string(got) != want {
		t.Fatalf("PUT answered %s, want %s", got, want)
	}
	if got, _ := json.Marshal(readPrefs(t, e.replica().get("/api/v1/me/preferences", alice))); string(got) != want {
		t.Fatalf("another replica reads %s, want %s", got, want)
	}
	var stored int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM user_preferences WHERE owner = $1 AND preferences->>'theme' = 'dark'`, alice).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("rows of alice's stored preferences: %d %v", stored, err)
	}
	if got := readPrefs(t, e.get("/api/v1/me/preferences", bob)); got != defaults {
		t.Fatalf("bob reads %+v, want the defaults", got)
	}
	if got := readPrefs(t, e.putPrefs(`{"theme":"light"}`, bearer(alice)...)); got.Theme != "light" || got.List != defaults.List {
		t.Fatalf("a partial PUT stored %+v, want light and the default list", got)
	}

	for _, c := range []struct{ body, class, names string }{
		{`{"theme":"blue"}`, "bad-parameter", "theme"},
		{`{"list":{"status":"done"}}`, "bad-parameter", "list.status"},
		{`{"list":{"risk_level":"extreme"}}`, "bad-parameter", "list.risk_level"},
		{`{"list":{"page_size":0}}`, "bad-parameter", "list.page_size"},
		{`{"list":{"page_size":201}}`, "bad-parameter", "list.page_size"},
		{`{"theme":"dark","font":"comic"}`, "bad-body", "font"},
		{`["dark"]`, "bad-body", "JSON object"},
		{`{"theme":"dark","padding":"` + strings.Repeat("x", 9<<10) + `"}`, "too-large", "exceeds"},
	} {
		status := http.StatusBadRequest
		if c.class == "too-large" {
			status = http.StatusRequestEntityTooLarge
		}
		p := e.putPrefs(c.body, bearer(alice)...).problem(t, status, c.class)
		if !strings.Contains(p.Detail, c.names) {
			t.Errorf("%.40s: %q does not name %s", c.body, p.Detail, c.names)
		}
	}
	if got := readPrefs(t, e.get("/api/v1/me/preferences", alice)); got.Theme != "light" {
		t.Fatalf("refused changes changed the preferences: %+v", got)
	}

	// With a session, like every change: the CSRF token and a same-origin
	// request.
	s := e.mustSignIn("alice@example.com", e.withPassword("alice@example.com"))
	e.putPrefs(`{"theme":"dark"}`, "Cookie", s.cookie, "Origin", e.url).problem(t, http.StatusForbidden, "csrf")
	e.putPrefs(`{"theme":"dark"}`, "Cookie", s.cookie, "X-CSRF-Token", s.csrf, "Origin", "https://evil.example").problem(t, http.StatusForbidden, "cross-origin")
	if got := readPrefs(t, e.get("/api/v1/me/preferences", "", "Cookie", s.cookie)); got.Theme != "light" {
		t.Fatalf("a refused session change changed the preferences: %+v", got)
	}
	if got := readPrefs(t, e.putPrefs(`{"theme":"dark"}`, e.as(s)...)); got.Theme != "dark" {
		t.Fatalf("the session's change: %+v", got)
	}
}
