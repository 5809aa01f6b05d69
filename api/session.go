package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"github.com/aiprism/prism/accounts"
	"github.com/gofiber/fiber/v2"
)

// maxAccountBody bounds the JSON bodies of sign-in and token creation.
const maxAccountBody = 8 << 10

// userView is a user as the API shows it.
type userView struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
	Role        string `json:"role"`
}

func viewUser(u accounts.User) userView {
	return userView{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: string(u.Role)}
}

// decodeBody reads a small JSON object into v, refusing unknown fields.
func decodeBody(c *fiber.Ctx, v any, what string) error {
	return decodeBodyUpTo(c, v, maxAccountBody, what)
}

// decodeOptionalBody is decodeBodyUpTo for a body that may be left out:
// no body leaves v as it is.
func decodeOptionalBody(c *fiber.Ctx, v any, max int64, what string) error {
	raw, err := readBody(c, max)
	if err != nil || len(bytes.TrimSpace(raw)) == 0 {
		return err
	}
	return decodeJSON(raw, v, what)
}

// decodeBodyUpTo reads a JSON object of at most max bytes into v,
// refusing unknown fields.
func decodeBodyUpTo(c *fiber.Ctx, v any, max int64, what string) error {
	raw, err := readBody(c, max)
	if err != nil {
		return err
	}
	return decodeJSON(raw, v, what)
}

func decodeJSON(raw []byte, v any, what string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return problem(fiber.StatusBadRequest, "bad-body", "the body must be a JSON object "+what+": "+err.Error())
	}
	return nil
}

// devAuth refuses what has no meaning when every request acts as the dev
// user without signing in.
func (s *Server) devAuth() error {
	if s.cfg.Auth != AuthDev {
		return nil
	}
	return problem(fiber.StatusConflict, "dev-auth",
		"API_AUTH=dev: every request acts as "+s.cfg.DevOwner+" without signing in; sessions and API tokens need API_AUTH=token")
}

// signIn checks an email and password and begins a session: a new secret
// in an HttpOnly cookie (a session the request came with ends: the id
// changes at every sign-in) and the CSRF token that changes made with it
// must carry. Failed attempts are slowed per account and per address
// across every replica.
func (s *Server) signIn(c *fiber.Ctx) error {
	if err := s.devAuth(); err != nil {
		return err
	}
	acc, err := s.accountsForm(c)
	if err != nil {
		return err
	}
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decodeBody(c, &in, `{"email", "password"}`); err != nil {
		return err
	}
	if in.Email == "" || in.Password == "" {
		return problem(fiber.StatusBadRequest, "bad-body", "email and password are required")
	}
	ctx := c.UserContext()
	attempt, err := acc.Throttle.Begin(ctx, in.Email, c.IP())
	if err != nil {
		return throttled(c, err)
	}
	u, err := acc.Users.Authenticate(ctx, in.Email, in.Password)
	if errors.Is(err, accounts.ErrInvalidCredentials) {
		if err != accounts.ErrInvalidCredentials { // joined with a cause for the operator: a broken stored hash
			s.deps.Log.Error().Err(err).Str("request_id", requestID(c)).Msg("sign-in failed on a server-side problem")
		}
		return problem(fiber.StatusUnauthorized, "invalid-credentials", accounts.ErrInvalidCredentials.Error())
	}
	if err != nil {
		return err
	}
	if err := attempt.Succeeded(ctx); err != nil {
		s.deps.Log.Error().Err(err).Str("request_id", requestID(c)).Msg("sign-in counter not reset")
	}
	if old := c.Cookies(s.sessionCookie().name); old != "" {
		if err := acc.Sessions.End(ctx, old); err != nil {
			return err
		}
	}
	secret, sess, err := acc.Sessions.Create(ctx, u.ID)
	if err != nil {
		return err
	}
	// The cookie lasts as long as the session can; the server ends it
	// sooner when it goes unused.
	s.setSessionCookie(c, secret, int(acc.Sessions.Max().Seconds()))
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{
		"user":         viewUser(u),
		"csrf_token":   accounts.CSRFToken(secret),
		"expires_at":   sess.CreatedAt.Add(acc.Sessions.Max()),
		"idle_timeout": int(acc.Sessions.Idle().Seconds()),
	})
}

// accountsForm checks what signing in and signing up need: the accounts,
// and a request that is not from another site's page (which must not sign
// its visitor in, to an attacker's account; scripts sending neither
// Origin nor Sec-Fetch-Site may).
func (s *Server) accountsForm(c *fiber.Ctx) (Accounts, error) {
	acc := s.deps.Accounts
	if acc.Sessions == nil || acc.Throttle == nil || acc.Users == nil {
		return acc, problem(fiber.StatusServiceUnavailable, "sessions-unavailable", "this server takes API tokens only")
	}
	return acc, sameOrigin(c, false)
}

// throttled answers a refused Throttle.Begin: 429 with Retry-After when
// the throttle slowed the caller down, the error itself otherwise.
func throttled(c *fiber.Ctx, err error) error {
	var slow *accounts.Throttled
	if !errors.As(err, &slow) {
		return err
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(int(math.Ceil(slow.Wait.Seconds())), 1)))
	return problem(fiber.StatusTooManyRequests, "too-many-attempts", slow.Error())
}

// signUp creates a user account when sign-up is open (API_SIGNUP=open).
// Each sign-up counts as an attempt of the sign-in throttle for its email
// and address, so one address cannot mint accounts without slowing down.
// The new user signs in with POST /api/v1/session.
func (s *Server) signUp(c *fiber.Ctx) error {
	if err := s.devAuth(); err != nil {
		return err
	}
	if !s.cfg.OpenSignUp {
		return problem(fiber.StatusForbidden, "signup-closed", "accounts are created by an administrator on this server")
	}
	acc, err := s.accountsForm(c)
	if err != nil {
		return err
	}
	var in struct {
		Email       string `json:"email"`
		Password    string `json:"password"`
		DisplayName string `json:"display_name"`
	}
	if err := decodeBody(c, &in, `{"email", "password", "display_name"}`); err != nil {
		return err
	}
	ctx := c.UserContext()
	if _, err := acc.Throttle.Begin(ctx, in.Email, c.IP()); err != nil {
		return throttled(c, err)
	}
	u, err := acc.Users.Add(ctx, accounts.NewUser{Email: in.Email, DisplayName: in.DisplayName, Role: accounts.RoleUser, Password: in.Password})
	switch {
	case errors.Is(err, accounts.ErrEmailTaken):
		return problem(fiber.StatusConflict, "email-taken", accounts.ErrEmailTaken.Error())
	case errors.Is(err, accounts.ErrInvalidEmail), errors.Is(err, accounts.ErrPasswordPolicy), errors.Is(err, accounts.ErrInvalidName):
		return problem(fiber.StatusBadRequest, "bad-account", err.Error())
	case err != nil:
		return err
	}
	c.Location("/api/v1/me")
	return c.Status(fiber.StatusCreated).JSON(viewUser(u))
}

// signOut ends the request's session on every replica.
func (s *Server) signOut(c *fiber.Ctx) error {
	if err := s.devAuth(); err != nil {
		return err
	}
	p := principalOf(c)
	if p.Via != viaSession {
		return problem(fiber.StatusBadRequest, "not-a-session",
			"this request is not signed in with a session; an API token is revoked with DELETE /api/v1/tokens/{id}")
	}
	if err := s.deps.Accounts.Sessions.End(c.UserContext(), p.secret); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

// me says who the request is authenticated as, and how. A session gets
// its CSRF token again (a page reloaded has lost it).
func (s *Server) me(c *fiber.Ctx) error {
	p := principalOf(c)
	out := fiber.Map{"user": viewUser(p.User), "auth": p.Via}
	switch p.Via {
	case viaSession:
		out["csrf_token"] = accounts.CSRFToken(p.secret)
		c.Set(fiber.HeaderCacheControl, "no-store")
	case viaToken:
		out["token"] = viewToken(*p.Token)
	}
	return c.JSON(out)
}
