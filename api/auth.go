package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const localsOwner = "owner"

// ownerOf returns the authenticated owner of the request.
func ownerOf(c *fiber.Ctx) string { return c.Locals(localsOwner).(string) }

// authenticate resolves the request's owner. Every query and stream the
// API opens is scoped by this owner and nothing else.
func authenticate(cfg Config, pool *pgxpool.Pool) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if cfg.Auth == AuthDev {
			c.Locals(localsOwner, cfg.DevOwner)
			return c.Next()
		}
		token, ok := strings.CutPrefix(c.Get(fiber.HeaderAuthorization), "Bearer ")
		if !ok || token == "" || len(token) > 256 {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ai-prism"`)
			return problem(fiber.StatusUnauthorized, "unauthenticated", "send an API token as Authorization: Bearer <token>")
		}
		owner, err := ownerForToken(c.UserContext(), pool, token)
		if errors.Is(err, pgx.ErrNoRows) {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="ai-prism", error="invalid_token"`)
			return problem(fiber.StatusUnauthorized, "invalid-token", "the API token is unknown or revoked")
		}
		if err != nil {
			return err
		}
		c.Locals(localsOwner, owner)
		return c.Next()
	}
}

// HashToken is how tokens are stored: only their SHA-256, so a database
// leak does not leak credentials.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func ownerForToken(ctx context.Context, pool *pgxpool.Pool, token string) (string, error) {
	var owner string
	err := pool.QueryRow(ctx, `SELECT user_id FROM api_tokens
		WHERE token_sha256 = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
		HashToken(token)).Scan(&owner)
	return owner, err
}
