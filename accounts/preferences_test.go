package accounts_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/persist/persisttest"
)

// TestPreferencesStore: each owner's document is their own, replaced
// whole; what is not a small JSON object, or not an owner's, is refused
// before the database (whose CHECK says the same).
func TestPreferencesStore(t *testing.T) {
	ctx := context.Background()
	p := accounts.NewPreferences(persisttest.DB(t))
	if doc, err := p.Get(ctx, "alice"); doc != nil || err != nil {
		t.Fatalf("never saved: %s %v", doc, err)
	}
	for _, doc := range []string{`{"theme":"dark"}`, `{"theme":"light","list":{"page_size":20}}`} {
		if err := p.Put(ctx, "alice", json.RawMessage(doc)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Put(ctx, "bob", json.RawMessage(`{"theme":"dark"}`)); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	doc, err := p.Get(ctx, "alice")
	if err != nil || json.Unmarshal(doc, &got) != nil || got["theme"] != "light" || got["list"] == nil {
		t.Fatalf("alice's: %s %v", doc, err)
	}
	for name, c := range map[string]struct{ owner, doc string }{
		"an array":          {"alice", `["dark"]`},
		"null":              {"alice", `null`},
		"not JSON":          {"alice", `{theme: dark}`},
		"too large":         {"alice", `{"x":"` + strings.Repeat("x", accounts.MaxPreferencesBytes) + `"}`},
		"an owner with dot": {"al.ice", `{}`},
		"no owner":          {"", `{}`},
	} {
		if err := p.Put(ctx, c.owner, json.RawMessage(c.doc)); !errors.Is(err, accounts.ErrInvalidPreferences) {
			t.Errorf("%s: %v, want ErrInvalidPreferences", name, err)
		}
	}
	if doc, _ := p.Get(ctx, "alice"); !strings.Contains(string(doc), "light") {
		t.Fatalf("refused documents changed alice's: %s", doc)
	}
}
