package api

import (
	"errors"
	"time"

	"github.com/aiprism/prism/accounts"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// tokenView is an API token as the API shows it: never its secret, which
// only the answer to its creation carries.
type tokenView struct {
	ID         string           `json:"id"`
	Name       string           `json:"name"`
	Scopes     []accounts.Scope `json:"scopes"`
	CreatedAt  time.Time        `json:"created_at"`
	LastUsedAt *time.Time       `json:"last_used_at"`
	ExpiresAt  *time.Time       `json:"expires_at"`
	RevokedAt  *time.Time       `json:"revoked_at"`
}

func viewToken(t accounts.Token) tokenView {
	return tokenView{ID: t.ID, Name: t.Name, Scopes: t.Scopes, CreatedAt: t.CreatedAt,
		LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt}
}

// createToken makes an API token for the signed-in user and shows its
// secret, this once. Only a session may: a leaked token must not mint
// tokens that outlive its revocation.
func (s *Server) createToken(c *fiber.Ctx) error {
	if err := s.devAuth(); err != nil {
		return err
	}
	p := principalOf(c)
	if p.Via != viaSession {
		return problem(fiber.StatusForbidden, "session-required", "API tokens are made by a signed-in user, not by another token")
	}
	var in struct {
		Name      string           `json:"name"`
		Scopes    []accounts.Scope `json:"scopes"`
		ExpiresAt *time.Time       `json:"expires_at"`
	}
	if err := decodeBody(c, &in, `{"name", "scopes", "expires_at"}`); err != nil {
		return err
	}
	nt := accounts.NewToken{UserID: p.User.ID, Name: in.Name, Scopes: in.Scopes}
	if nt.Scopes == nil {
		nt.Scopes = []accounts.Scope{accounts.ScopeRead, accounts.ScopeWrite}
	}
	if in.ExpiresAt != nil {
		nt.ExpiresAt = *in.ExpiresAt
	}
	secret, t, err := s.deps.Accounts.Tokens.Create(c.UserContext(), nt)
	if errors.Is(err, accounts.ErrInvalidName) || errors.Is(err, accounts.ErrInvalidScope) || errors.Is(err, accounts.ErrInvalidExpiry) {
		return problem(fiber.StatusBadRequest, "bad-body", err.Error())
	}
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(struct {
		Token string `json:"token"`
		tokenView
	}{secret, viewToken(t)})
}

// listTokens lists the caller's API tokens, newest first.
func (s *Server) listTokens(c *fiber.Ctx) error {
	if err := s.devAuth(); err != nil {
		return err
	}
	tokens, err := s.deps.Accounts.Tokens.List(c.UserContext(), principalOf(c).User.ID)
	if err != nil {
		return err
	}
	items := make([]tokenView, len(tokens))
	for i, t := range tokens {
		items[i] = viewToken(t)
	}
	return c.JSON(fiber.Map{"items": items})
}

// revokeToken revokes one of the caller's API tokens, on every replica
// at once; another user's token is not found.
func (s *Server) revokeToken(c *fiber.Ctx) error {
	if err := s.devAuth(); err != nil {
		return err
	}
	id := c.Params("id")
	if streams.ValidToken(id) != nil {
		return problem(fiber.StatusNotFound, classNotFound, "no such API token")
	}
	err := s.deps.Accounts.Tokens.RevokeOwn(c.UserContext(), principalOf(c).User.ID, id)
	if errors.Is(err, accounts.ErrTokenNotFound) {
		return problem(fiber.StatusNotFound, classNotFound, "no API token "+id)
	}
	if err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
