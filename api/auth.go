package api

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

const (
	localsOwner     = "owner"
	localsPrincipal = "principal"
)

// How a request was authenticated.
const (
	viaSession = "session"
	viaToken   = "token"
	viaDev     = "dev"
)

// HeaderCSRF carries the session's CSRF token on changes made with a
// session cookie.
const HeaderCSRF = "X-CSRF-Token"

// principal is who makes the request.
type principal struct {
	User   accounts.User
	Via    string          // viaSession, viaToken or viaDev
	Token  *accounts.Token // the API token, when Via is viaToken
	secret string          // the session secret, when Via is viaSession
}

// ownerOf returns the owner whose documents the request reads or changes:
// the authenticated user, or for an admin's read the user named by
// ?owner= (see ownerFor).
func ownerOf(c *fiber.Ctx) string { return c.Locals(localsOwner).(string) }

// principalOf returns who is authenticated, nil outside the
// authenticated routes.
func principalOf(c *fiber.Ctx) *principal {
	p, _ := c.Locals(localsPrincipal).(*principal)
	return p
}

// authenticate resolves who makes the request and whose documents it
// concerns. Every query and stream the API opens is scoped by that owner
// and nothing else.
func (s *Server) authenticate(c *fiber.Ctx) error {
	p, err := s.identify(c)
	if err != nil {
		return err
	}
	c.Locals(localsPrincipal, p)
	owner, foreign, err := ownerFor(c, p)
	if err != nil {
		return err
	}
	c.Locals(localsOwner, owner)
	if foreign {
		return s.auditForeignRead(c)
	}
	return c.Next()
}

// identify authenticates the request: in dev mode as the dev user; else
// by an API token in Authorization (which needs no CSRF token: browsers
// never send it on their own), else by the session cookie (which they
// do: a change needs the CSRF token and a same-origin request).
func (s *Server) identify(c *fiber.Ctx) (*principal, error) {
	if s.cfg.Auth == AuthDev {
		return &principal{User: accounts.User{ID: s.cfg.DevOwner, Role: accounts.RoleUser}, Via: viaDev}, nil
	}
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		return s.bearer(c, h)
	}
	if secret := c.Cookies(s.sessionCookie().name); secret != "" && s.deps.Accounts.Sessions != nil {
		return s.session(c, secret)
	}
	c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ai-prism"`)
	return nil, problem(fiber.StatusUnauthorized, "unauthenticated",
		"sign in (POST /api/v1/session) or send an API token as Authorization: Bearer <token>")
}

// bearer authenticates by API token. The token is looked up in
// PostgreSQL on every request, so a revocation or a disabled user holds
// on every replica at once.
func (s *Server) bearer(c *fiber.Ctx, header string) (*principal, error) {
	scheme, token, _ := strings.Cut(header, " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ai-prism"`)
		return nil, problem(fiber.StatusUnauthorized, "unauthenticated", "send an API token as Authorization: Bearer <token>")
	}
	u, t, err := s.deps.Accounts.Tokens.Lookup(c.UserContext(), token)
	if errors.Is(err, accounts.ErrInvalidToken) {
		// The reason (revoked, expired, ...) names the token's id, never
		// the secret: for the operator, not the caller.
		s.deps.Log.Debug().Err(err).Str("request_id", requestID(c)).Msg("API token refused")
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ai-prism", error="invalid_token"`)
		return nil, problem(fiber.StatusUnauthorized, "invalid-token", "the API token is unknown, revoked or expired")
	}
	if err != nil {
		return nil, err
	}
	if need := scopeFor(c.Method()); !t.Has(need) {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ai-prism", error="insufficient_scope", scope="`+string(need)+`"`)
		return nil, problem(fiber.StatusForbidden, "insufficient-scope",
			"this API token lacks the "+string(need)+" scope that "+c.Method()+" needs")
	}
	return &principal{User: u, Via: viaToken, Token: &t}, nil
}

// scopeFor is the token scope a request method needs.
func scopeFor(method string) accounts.Scope {
	if changes(method) {
		return accounts.ScopeWrite
	}
	return accounts.ScopeRead
}

// changes reports whether method asks for a change.
func changes(method string) bool {
	switch method {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
		return false
	}
	return true
}

// session authenticates by session cookie; a change also needs the CSRF
// token and a same-origin request.
func (s *Server) session(c *fiber.Ctx, secret string) (*principal, error) {
	u, _, err := s.deps.Accounts.Sessions.Lookup(c.UserContext(), secret)
	if errors.Is(err, accounts.ErrInvalidSession) {
		s.deps.Log.Debug().Err(err).Str("request_id", requestID(c)).Msg("session refused")
		s.clearSessionCookie(c)
		return nil, problem(fiber.StatusUnauthorized, "invalid-session", "the session has ended or expired: sign in again")
	}
	if err != nil {
		return nil, err
	}
	if changes(c.Method()) {
		if err := sameOrigin(c, true); err != nil {
			return nil, err
		}
		if !accounts.CheckCSRF(secret, c.Get(HeaderCSRF)) {
			return nil, problem(fiber.StatusForbidden, "csrf",
				"a change made with a session needs its CSRF token (from sign-in or GET /api/v1/me) in "+HeaderCSRF)
		}
	}
	return &principal{User: u, Via: viaSession, secret: secret}, nil
}

// sameOrigin refuses a request a browser made from another site: its
// Sec-Fetch-Site, when sent, must be same-origin, and its Origin, when
// sent, this API's own. With required, one of the two must be sent
// (every browser sends at least one on a change).
func sameOrigin(c *fiber.Ctx, required bool) error {
	refuse := func(why string) error {
		return problem(fiber.StatusForbidden, "cross-origin", why)
	}
	site := c.Get("Sec-Fetch-Site")
	if site != "" && site != "same-origin" {
		return refuse("a request from another site (Sec-Fetch-Site: " + site + ") cannot use a session")
	}
	origin := c.Get(fiber.HeaderOrigin)
	switch {
	case origin != "":
		if !sameHost(origin, c.Hostname()) {
			return refuse("a request from another origin cannot use a session")
		}
	case required && site == "":
		return refuse("a change made with a session must say where it comes from (Origin or Sec-Fetch-Site)")
	}
	return nil
}

// sameHost reports whether origin (scheme://host[:port]) names host, the
// request's Host, default ports aside.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
		return false
	}
	trim := func(h string) string {
		return strings.TrimSuffix(strings.TrimSuffix(strings.ToLower(h), ":443"), ":80")
	}
	return host != "" && trim(u.Host) == trim(host)
}

// ownerFor returns whose documents the request concerns and whether they
// are another user's. Only an admin names another owner (?owner=), only
// to read documents; everyone else only ever reaches their own.
func ownerFor(c *fiber.Ctx, p *principal) (string, bool, error) {
	want := c.Query("owner")
	if want == "" || want == p.User.ID {
		return p.User.ID, false, nil
	}
	path := strings.TrimSuffix(c.Path(), "/")
	if c.Method() != fiber.MethodGet || (path != "/api/v1/documents" && !strings.HasPrefix(path, "/api/v1/documents/")) {
		return "", false, badParam("owner", "only reads of documents (GET /api/v1/documents...) name an owner")
	}
	if p.User.Role != accounts.RoleAdmin {
		return "", false, problem(fiber.StatusForbidden, "admin-only", "only an admin reads another user's documents")
	}
	if streams.ValidToken(want) != nil {
		return "", false, badParam("owner", "is not a user id")
	}
	return want, true, nil
}

// cookieSpec is the session cookie's name and whether it is Secure.
type cookieSpec struct {
	name   string
	secure bool
}

// sessionCookie is Secure always, except when the API listens on
// plain-http loopback (a developer's machine), where browsers would not
// send it back. A secure cookie takes the __Host- prefix: browsers then
// refuse it unless it was set over https, for the whole host, with no
// Domain.
func (s *Server) sessionCookie() cookieSpec {
	addr := s.cfg.Addr
	if s.deps.Listener != nil {
		addr = s.deps.Listener.Addr().String()
	}
	if loopback(addr) {
		return cookieSpec{name: "prism_session"}
	}
	return cookieSpec{name: "__Host-prism_session", secure: true}
}

// setSessionCookie sets the session cookie for maxAge seconds; a maxAge
// under 1 removes it (an expiry in the past: fasthttp writes no Max-Age
// under 1).
func (s *Server) setSessionCookie(c *fiber.Ctx, value string, maxAge int) {
	spec := s.sessionCookie()
	ck := &fiber.Cookie{Name: spec.name, Value: value, Path: "/", MaxAge: maxAge,
		Secure: spec.secure, HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode}
	if maxAge < 1 {
		ck.MaxAge, ck.Expires = 0, time.Unix(0, 0)
	}
	c.Cookie(ck)
}

func (s *Server) clearSessionCookie(c *fiber.Ctx) { s.setSessionCookie(c, "", 0) }

// checkListener refuses dev auth on a listener other than loopback, for
// callers that did not read their Config with ConfigFromEnv.
func (s *Server) checkListener(ln net.Listener) error {
	if s.cfg.Auth == AuthDev && !loopback(ln.Addr().String()) {
		return errors.New("api: refusing to start: " + devAuthRisk(ln.Addr().String()) + "; set API_AUTH=token or API_ADDR to a loopback address")
	}
	return nil
}

// HashToken is how API tokens are stored: see accounts.HashToken.
func HashToken(token string) string { return accounts.HashToken(token) }
