package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/api"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// alicePassword is alice's password once withPassword has set it.
const alicePassword = "alice's long passphrase"

// withPassword gives the user with email a password and returns it.
func (e *env) withPassword(email string) string {
	e.t.Helper()
	if _, err := e.accounts.Users.SetPassword(context.Background(), email, alicePassword); err != nil {
		e.t.Fatal(err)
	}
	return alicePassword
}

// replica is the env seen through another API server on the same NATS,
// database and object store.
func (e *env) replica() *env {
	e.t.Helper()
	r := *e
	r.srv, r.url = e.serve()
	return &r
}

// session is what a browser keeps of a sign-in.
type session struct {
	cookie string // name=value
	csrf   string
}

// signIn posts credentials; on success it returns the session.
func (e *env) signIn(email, password string, header ...string) (response, session) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	r := e.do(http.MethodPost, "/api/v1/session", "", strings.NewReader(string(body)),
		append([]string{"Content-Type", "application/json"}, header...)...)
	if r.StatusCode != http.StatusOK {
		return r, session{}
	}
	var out struct {
		CSRF string `json:"csrf_token"`
		User struct{ ID string }
	}
	r.json(e.t, &out)
	var s session
	for _, c := range r.Cookies() {
		if c.Name == "prism_session" {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Secure {
				e.t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/, not Secure on plain-http loopback", c)
			}
			s.cookie = c.Name + "=" + c.Value
		}
	}
	if s.cookie == "" || out.CSRF == "" {
		e.t.Fatalf("sign-in set no session cookie or CSRF token: %v %s", r.Header.Values("Set-Cookie"), r.body)
	}
	s.csrf = out.CSRF
	return r, s
}

// mustSignIn signs alice in and returns her session.
func (e *env) mustSignIn(email, password string) session {
	e.t.Helper()
	r, s := e.signIn(email, password)
	expect(e.t, r, http.StatusOK)
	return s
}

// as are the header fields of a same-origin browser request of session s
// to this env's server.
func (e *env) as(s session, extra ...string) []string {
	return append([]string{"Cookie", s.cookie, api.HeaderCSRF, s.csrf, "Origin", e.url}, extra...)
}

// uploadAs uploads a document with the header fields given and returns
// the answer.
func (e *env) uploadAs(filename, content string, header ...string) response {
	e.t.Helper()
	body, ct := multipartBody("file", filename, []byte(content))
	return e.do(http.MethodPost, "/api/v1/documents", "", body, append([]string{"Content-Type", ct}, header...)...)
}

// TestSessionAcrossReplicas: signed in on one API server, the browser
// uploads and follows the document's events on another; signed out on
// the second, the session is refused on the first.
func TestSessionAcrossReplicas(t *testing.T) {
	one := newEnv(t)
	two := one.replica()
	s := one.mustSignIn("alice@example.com", one.withPassword("alice@example.com"))

	r := two.uploadAs("replica.txt", "indemnify the supplier", two.as(s)...)
	expect(t, r, http.StatusAccepted)
	var up struct{ ID string }
	r.json(t, &up)
	d := &doc{e: two, owner: alice, id: up.ID, run: 1}
	d.extract("indemnify the supplier")
	d.analyze(55, "medium")
	status, _, kinds, err := two.sseStream(context.Background(), "", d.id, "", nil, "Cookie", s.cookie)
	if err != nil || status != http.StatusOK || len(kinds) == 0 || kinds[len(kinds)-1] != "analyzed" {
		t.Fatalf("events on the second server: %d %v %v", status, kinds, err)
	}
	var me struct {
		User struct{ ID, Email string }
		Auth string
		CSRF string `json:"csrf_token"`
	}
	two.get("/api/v1/me", "", "Cookie", s.cookie).json(t, &me)
	if me.User.ID != alice || me.Auth != "session" || me.CSRF != s.csrf {
		t.Fatalf("me on the second server: %+v", me)
	}

	r = two.do(http.MethodDelete, "/api/v1/session", "", nil, two.as(s)...)
	expect(t, r, http.StatusNoContent)
	if c := r.Cookies(); len(c) != 1 || c[0].Name != "prism_session" || c[0].Value != "" || !c[0].Expires.Before(time.Now()) {
		t.Errorf("sign-out does not clear the cookie: %v", r.Header.Values("Set-Cookie"))
	}
	one.get("/api/v1/documents/"+d.id, "", "Cookie", s.cookie).problem(t, http.StatusUnauthorized, "invalid-session")
	two.get("/api/v1/me", "", "Cookie", s.cookie).problem(t, http.StatusUnauthorized, "invalid-session")
}

// TestSignInRotatesTheSession: signing in again with a session ends it
// and makes a new one; wrong credentials say nothing about the account.
func TestSignInRotatesTheSession(t *testing.T) {
	e := newEnv(t)
	pw := e.withPassword("alice@example.com")
	first := e.mustSignIn("alice@example.com", pw)
	r, second := e.signIn("ALICE@example.com", pw, "Cookie", first.cookie)
	expect(t, r, http.StatusOK)
	if second.cookie == first.cookie || second.csrf == first.csrf {
		t.Fatal("a second sign-in kept the session id")
	}
	e.get("/api/v1/me", "", "Cookie", first.cookie).problem(t, http.StatusUnauthorized, "invalid-session")
	expect(t, e.get("/api/v1/me", "", "Cookie", second.cookie), http.StatusOK)

	wrong, _ := e.signIn("alice@example.com", "not alice's password")
	unknown, _ := e.signIn("nobody@example.com", pw)
	for _, r := range []response{wrong, unknown} {
		if p := r.problem(t, http.StatusUnauthorized, "invalid-credentials"); p.Detail != accounts.ErrInvalidCredentials.Error() {
			t.Errorf("refusal says %q", p.Detail)
		}
		if len(r.Cookies()) != 0 {
			t.Errorf("a refused sign-in set %v", r.Header.Values("Set-Cookie"))
		}
	}
}

// uploadCount is how many documents owner has uploaded: their uploaded
// events on the bus, there as soon as an upload is answered.
func (e *env) uploadCount(owner string) int {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), streams.DocsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(streams.DocRoot+"."+owner+".*."+string(streams.Uploaded)))
	if err != nil {
		e.t.Fatal(err)
	}
	return len(info.State.Subjects)
}

// TestCSRF: a change made with a session cookie needs the session's CSRF
// token and a same-origin request; a read does not; a bearer token needs
// neither.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	s := e.mustSignIn("alice@example.com", e.withPassword("alice@example.com"))
	for name, header := range map[string][]string{
		"no token":     {"Cookie", s.cookie, "Origin", e.url},
		"wrong token":  {"Cookie", s.cookie, api.HeaderCSRF, s.csrf + "x", "Origin", e.url},
		"other origin": {"Cookie", s.cookie, api.HeaderCSRF, s.csrf, "Origin", "https://evil.example"},
		"cross-site":   {"Cookie", s.cookie, api.HeaderCSRF, s.csrf, "Sec-Fetch-Site", "cross-site"},
		"same-site":    {"Cookie", s.cookie, api.HeaderCSRF, s.csrf, "Origin", e.url, "Sec-Fetch-Site", "same-site"},
		"no origin":    {"Cookie", s.cookie, api.HeaderCSRF, s.csrf},
	} {
		class := "cross-origin"
		if strings.Contains(name, "token") {
			class = "csrf"
		}
		t.Logf("%s: refused as %s", name, class)
		e.uploadAs("forged.txt", "x", header...).problem(t, http.StatusForbidden, class)
		e.do(http.MethodDelete, "/api/v1/session", "", nil, header...).problem(t, http.StatusForbidden, class)
	}
	if n := e.uploadCount(alice); n != 0 {
		t.Fatalf("refused uploads stored %d documents", n)
	}
	// Allowed: the token with a matching Origin, or with Sec-Fetch-Site
	// same-origin and no Origin; a read without either.
	expect(t, e.uploadAs("ok.txt", "x", e.as(s)...), http.StatusAccepted)
	expect(t, e.uploadAs("ok.txt", "x", "Cookie", s.cookie, api.HeaderCSRF, s.csrf, "Sec-Fetch-Site", "same-origin"), http.StatusAccepted)
	expect(t, e.get("/api/v1/documents", "", "Cookie", s.cookie, "Sec-Fetch-Site", "cross-site"), http.StatusOK)
	// A bearer token needs neither, wherever the request says it is from.
	expect(t, e.uploadAs("bearer.txt", "x", "Authorization", "Bearer "+tokenOf(alice), "Origin", "https://evil.example"), http.StatusAccepted)
	if n := e.uploadCount(alice); n != 3 {
		t.Fatalf("%d documents, want 3", n)
	}
	// A page of another site cannot sign its visitor in.
	r, _ := e.signIn("alice@example.com", alicePassword, "Origin", "https://evil.example")
	r.problem(t, http.StatusForbidden, "cross-origin")
}

// TestTokenRevokedOnOtherReplicaAtOnce: a token made and revoked through
// one server is refused by the other at the next request.
func TestTokenRevokedOnOtherReplicaAtOnce(t *testing.T) {
	one := newEnv(t)
	two := one.replica()
	s := one.mustSignIn("alice@example.com", one.withPassword("alice@example.com"))
	r := one.do(http.MethodPost, "/api/v1/tokens", "", strings.NewReader(`{"name":"ci","scopes":["read"]}`),
		one.as(s, "Content-Type", "application/json")...)
	expect(t, r, http.StatusCreated)
	var created struct {
		Token, ID string
		Scopes    []string
	}
	r.json(t, &created)
	if accounts.CheckTokenFormat(created.Token) != nil || created.ID == "" || len(created.Scopes) != 1 {
		t.Fatalf("created %+v", created)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the token's answer may be cached: %q", r.Header.Get("Cache-Control"))
	}
	bearer := []string{"Authorization", "Bearer " + created.Token}
	expect(t, two.get("/api/v1/documents", "", bearer...), http.StatusOK)

	list := one.get("/api/v1/tokens", "", "Cookie", s.cookie)
	expect(t, list, http.StatusOK)
	if strings.Contains(string(list.body), created.Token) || !strings.Contains(string(list.body), created.ID) {
		t.Fatalf("token list: %s", list.body)
	}
	// Another user cannot revoke it, nor see it.
	expect(t, one.do(http.MethodDelete, "/api/v1/tokens/"+created.ID, bob, nil), http.StatusNotFound)
	if b := one.get("/api/v1/tokens", bob); strings.Contains(string(b.body), created.ID) {
		t.Fatalf("bob sees alice's token: %s", b.body)
	}
	expect(t, two.get("/api/v1/documents", "", bearer...), http.StatusOK)

	expect(t, one.do(http.MethodDelete, "/api/v1/tokens/"+created.ID, "", nil, one.as(s)...), http.StatusNoContent)
	two.get("/api/v1/documents", "", bearer...).problem(t, http.StatusUnauthorized, "invalid-token")
}

// TestDisabledUserStopsAtOnce: disabling a user refuses their session and
// tokens on every server at the next request.
func TestDisabledUserStopsAtOnce(t *testing.T) {
	one := newEnv(t)
	two := one.replica()
	s := one.mustSignIn("alice@example.com", one.withPassword("alice@example.com"))
	expect(t, two.get("/api/v1/me", "", "Cookie", s.cookie), http.StatusOK)
	if _, err := one.accounts.Users.Disable(context.Background(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	two.get("/api/v1/me", "", "Cookie", s.cookie).problem(t, http.StatusUnauthorized, "invalid-session")
	two.get("/api/v1/me", alice).problem(t, http.StatusUnauthorized, "invalid-token")
	r, _ := one.signIn("alice@example.com", alicePassword)
	r.problem(t, http.StatusUnauthorized, "invalid-credentials")
}

// TestSessionLifetimes: a session ends after the idle lifetime unused and
// at the absolute lifetime however used.
func TestSessionLifetimes(t *testing.T) {
	e := newEnv(t)
	pw := e.withPassword("alice@example.com")
	idle, maxLife := accounts.DefaultSessionIdle, accounts.DefaultSessionMax

	s := e.mustSignIn("alice@example.com", pw)
	e.clock.Add(idle - time.Minute)
	expect(t, e.get("/api/v1/me", "", "Cookie", s.cookie), http.StatusOK)
	e.clock.Add(idle - time.Minute)
	expect(t, e.get("/api/v1/me", "", "Cookie", s.cookie), http.StatusOK) // the use before kept it alive
	e.clock.Add(idle)
	e.get("/api/v1/me", "", "Cookie", s.cookie).problem(t, http.StatusUnauthorized, "invalid-session")

	s = e.mustSignIn("alice@example.com", pw)
	for used := time.Duration(0); used+idle/2 < maxLife; used += idle / 2 {
		e.clock.Add(idle / 2)
		expect(t, e.get("/api/v1/me", "", "Cookie", s.cookie), http.StatusOK)
	}
	e.clock.Add(idle / 2)
	e.get("/api/v1/me", "", "Cookie", s.cookie).problem(t, http.StatusUnauthorized, "invalid-session")
}

// TestSignInThrottledAcrossReplicas: failed sign-ins spread over two
// servers meet one counter; once it says wait, even the right password
// waits; a success resets it.
func TestSignInThrottledAcrossReplicas(t *testing.T) {
	one := newEnv(t)
	two := one.replica()
	pw := one.withPassword("alice@example.com")
	policy := accounts.DefaultThrottlePolicy()
	fail := func(e *env) {
		t.Helper()
		r, _ := e.signIn("alice@example.com", "a wrong passphrase")
		r.problem(t, http.StatusUnauthorized, "invalid-credentials")
	}
	for i := range policy.AccountFree {
		fail([]*env{one, two}[i%2])
	}
	for _, e := range []*env{two, one} {
		r, _ := e.signIn("alice@example.com", pw)
		p := r.problem(t, http.StatusTooManyRequests, "too-many-attempts")
		if r.Header.Get("Retry-After") != "1" || !strings.Contains(p.Detail, "try again in 1s") {
			t.Fatalf("throttled: Retry-After %q, %q", r.Header.Get("Retry-After"), p.Detail)
		}
	}
	one.clock.Add(time.Second)
	fail(two)
	r, _ := one.signIn("alice@example.com", pw)
	r.problem(t, http.StatusTooManyRequests, "too-many-attempts")
	if r.Header.Get("Retry-After") != "2" {
		t.Fatalf("second delay: Retry-After %q, want 2", r.Header.Get("Retry-After"))
	}
	one.clock.Add(2 * time.Second)
	one.mustSignIn("alice@example.com", pw)
	for i := range policy.AccountFree {
		fail([]*env{one, two}[i%2]) // the success reset the count
	}
	r, _ = two.signIn("alice@example.com", pw)
	r.problem(t, http.StatusTooManyRequests, "too-many-attempts")
}

// TestTokenScopes: a read token reads and changes nothing; a write token
// changes and reads nothing; no token makes tokens.
func TestTokenScopes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	token := func(scopes ...accounts.Scope) []string {
		secret, _, err := e.accounts.Tokens.Create(ctx, accounts.NewToken{UserID: alice, Name: "scoped", Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		return []string{"Authorization", "Bearer " + secret}
	}
	read, write := token(accounts.ScopeRead), token(accounts.ScopeWrite)
	id := e.upload(alice, "scoped.txt", []byte("text"))

	expect(t, e.get("/api/v1/documents", "", read...), http.StatusOK)
	expect(t, e.get("/api/v1/documents/"+id, "", read...), http.StatusOK)
	r := e.uploadAs("denied.txt", "x", read...)
	r.problem(t, http.StatusForbidden, "insufficient-scope")
	if h := r.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="write"`) {
		t.Errorf("WWW-Authenticate %q", h)
	}
	e.do(http.MethodDelete, "/api/v1/documents/"+id, "", nil, read...).problem(t, http.StatusForbidden, "insufficient-scope")
	e.do(http.MethodPost, "/api/v1/documents/"+id+"/reanalyze", "", nil, read...).problem(t, http.StatusForbidden, "insufficient-scope")

	e.get("/api/v1/documents/"+id, "", write...).problem(t, http.StatusForbidden, "insufficient-scope")
	expect(t, e.uploadAs("allowed.txt", "x", write...), http.StatusAccepted)

	e.do(http.MethodPost, "/api/v1/tokens", "", strings.NewReader(`{"name":"child"}`),
		append(write, "Content-Type", "application/json")...).problem(t, http.StatusForbidden, "session-required")
}

// TestAdminReadsAreAudited: an admin reads another user's documents with
// ?owner=, and every read is audited under the admin's name; nobody else
// names another owner.
func TestAdminReadsAreAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin, err := e.accounts.Users.Add(ctx, accounts.NewUser{Email: "root@example.com", Role: accounts.RoleAdmin, Password: alicePassword})
	if err != nil {
		t.Fatal(err)
	}
	as := e.mustSignIn("root@example.com", alicePassword)
	cookie := []string{"Cookie", as.cookie}
	// Audit entries are one per document, kind, user and minute: each
	// read below is the first of its kind on its document.
	docs := map[string]*doc{}
	for _, read := range []string{"document", "history", "events", "list"} {
		docs[read] = e.analyzed(alice, read+".txt", "unlimited liability", 80, "high")
	}
	path := func(read string) string { return "/api/v1/documents/" + docs[read].id }

	// Without ?owner=, an admin sees their own documents: none.
	if n := len(listIDs(t, e.get("/api/v1/documents", "", cookie...))); n != 0 {
		t.Fatalf("the admin's own list shows %d documents", n)
	}
	e.get(path("document"), "", cookie...).problem(t, http.StatusNotFound, "not-found")

	expect(t, e.get(path("document")+"?owner="+alice, "", cookie...), http.StatusOK)
	expect(t, e.get(path("document")+"/original?owner="+alice, "", cookie...), http.StatusOK)
	expect(t, e.get(path("history")+"/history?owner="+alice, "", cookie...), http.StatusOK)
	status, _, kinds, err := e.sseStream(ctx, "", docs["events"].id, "?owner="+alice, nil, cookie...)
	if err != nil || status != http.StatusOK || len(kinds) == 0 {
		t.Fatalf("admin's event stream: %d %v %v", status, kinds, err)
	}
	if ids := listIDs(t, e.get("/api/v1/documents?owner="+alice, "", cookie...)); len(ids) != len(docs) {
		t.Fatalf("admin's list of alice's documents: %v", ids)
	}
	for read, want := range map[string][]string{
		"document": {"audit.viewed document", "audit.downloaded "},
		"history":  {"audit.viewed history"},
		"events":   {"audit.viewed events"},
		"list":     {"audit.viewed list"},
	} {
		got := e.auditsBy(docs[read].id, admin.ID)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s read: entries under the admin's name %v, want %q", read, got, w)
			}
		}
	}
	if got := e.auditsBy(docs["list"].id, alice); len(got) != 0 {
		t.Errorf("the admin's reads were audited under alice's name: %v", got)
	}

	// A user names no other owner; nobody names one to change anything.
	e.get("/api/v1/documents?owner="+bob, alice).problem(t, http.StatusForbidden, "admin-only")
	e.get(path("list")+"?owner="+alice, bob).problem(t, http.StatusForbidden, "admin-only")
	e.do(http.MethodDelete, path("list")+"?owner="+alice, "", nil, e.as(as)...).problem(t, http.StatusBadRequest, "bad-parameter")
	e.get("/api/v1/stats?owner="+alice, "", cookie...).problem(t, http.StatusBadRequest, "bad-parameter")
	expect(t, e.get(path("list"), alice), http.StatusOK)
}

// auditsBy lists the audit entries of a document made by user, as "type
// what".
func (e *env) auditsBy(id, user string) []string {
	e.t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT type || ' ' || COALESCE(detail->>'what', '') FROM document_events
		WHERE document_id = $1 AND type LIKE 'audit.%' AND detail->>'actor' = $2`, id, user)
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func listIDs(t *testing.T, r response) []string {
	t.Helper()
	expect(t, r, http.StatusOK)
	var page struct{ Items []struct{ ID string } }
	r.json(t, &page)
	var ids []string
	for _, d := range page.Items {
		ids = append(ids, d.ID)
	}
	return ids
}

// TestDevAuthOnlyOnLoopback: dev auth is refused on an address others
// reach, by the configuration and by the server itself.
func TestDevAuthOnlyOnLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "192.0.2.10:8080": false, "api.example.com:8080": false,
	} {
		l := config.New(config.MapEnv(map[string]string{"API_AUTH": "dev", "API_ADDR": addr}))
		api.ConfigFromEnv(l)
		err := l.Err()
		if ok != (err == nil) {
			t.Errorf("dev auth on %s: %v", addr, err)
		}
		if err != nil && (!strings.Contains(err.Error(), "API_AUTH") || !strings.Contains(err.Error(), "API_ADDR="+addr)) {
			t.Errorf("the refusal does not name API_AUTH and API_ADDR: %v", err)
		}
		l = config.New(config.MapEnv(map[string]string{"API_AUTH": "token", "API_ADDR": addr}))
		if api.ConfigFromEnv(l); l.Err() != nil {
			t.Errorf("token auth on %s: %v", addr, l.Err())
		}
	}

	e := newEnv(t)
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deps := e.deps
	deps.Listener, deps.Registry = ln, obs.NewRegistry()
	srv := api.New(api.Config{Auth: api.AuthDev, DevOwner: "dev"}, deps)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Run(ctx); err == nil || !strings.Contains(err.Error(), "API_AUTH=dev") {
		t.Fatalf("dev auth served on %s: %v", ln.Addr(), err)
	}
}

// TestSignUpOnlyWhenOpen: with API_SIGNUP closed (the default) nobody can
// make an account over HTTP; open, a new user signs up, signs in and works
// on their own documents, and a taken email or a short password is
// refused with nothing created.
func TestSignUpOnlyWhenOpen(t *testing.T) {
	body := func(email, password string) io.Reader {
		raw, _ := json.Marshal(map[string]string{"email": email, "password": password, "display_name": "Carol"})
		return bytes.NewReader(raw)
	}
	closed := newEnv(t)
	closed.do(http.MethodPost, "/api/v1/users", "", body("carol@example.com", "carol's long passphrase"),
		"Content-Type", "application/json").problem(t, http.StatusForbidden, "signup-closed")
	if _, err := closed.accounts.Users.Get(context.Background(), "carol@example.com"); !errors.Is(err, accounts.ErrUserNotFound) {
		t.Fatalf("closed sign-up made an account: %v", err)
	}

	e := newEnv(t, withAPI(func(c *api.Config) { c.OpenSignUp = true }))
	r := e.do(http.MethodPost, "/api/v1/users", "", body("Carol@Example.com", "carol's long passphrase"), "Content-Type", "application/json")
	expect(t, r, http.StatusCreated)
	var carol struct{ ID, Email, Role string }
	r.json(t, &carol)
	if carol.Email != "carol@example.com" || carol.Role != "user" || carol.ID == "" {
		t.Fatalf("signed up as %+v, want a user carol@example.com", carol)
	}
	s := e.mustSignIn("carol@example.com", "carol's long passphrase")
	expect(t, e.uploadAs("mine.txt", "carol's document", e.as(s)...), http.StatusAccepted)

	e.do(http.MethodPost, "/api/v1/users", "", body("carol@example.com", "another long passphrase"),
		"Content-Type", "application/json").problem(t, http.StatusConflict, "email-taken")
	e.do(http.MethodPost, "/api/v1/users", "", body("dave@example.com", "short"),
		"Content-Type", "application/json").problem(t, http.StatusBadRequest, "bad-account")
	if _, err := e.accounts.Users.Get(context.Background(), "dave@example.com"); !errors.Is(err, accounts.ErrUserNotFound) {
		t.Fatalf("a refused sign-up made an account: %v", err)
	}
}
