package api

import (
	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// stats summarizes the owner's documents: counts by status and risk
// level, model usage (assessments, tokens, cost) and the time each stage
// takes, optionally within since/until (RFC 3339).
func (s *Server) stats(c *fiber.Ctx) error {
	since, err := timeParam("since", c.Query("since"))
	if err != nil {
		return err
	}
	until, err := timeParam("until", c.Query("until"))
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		return badParam("since", "must be before until")
	}
	st, err := s.deps.Documents.Stats(c.UserContext(), ownerOf(c), store.StatsWindow{Since: since, Until: until})
	if err != nil {
		return err
	}
	return c.JSON(st)
}
