package api

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// preferences are a user's settings of the web application, kept on the
// server so that they follow the user from browser to browser. The API
// owns their shape; accounts.Preferences stores them.
type preferences struct {
	Theme string       `json:"theme"`
	List  listDefaults `json:"list"`
}

// listDefaults are the dashboard's filters and page size when it opens,
// with the values GET /api/v1/documents takes ("" = no filter).
type listDefaults struct {
	Status    string `json:"status"`
	RiskLevel string `json:"risk_level"`
	PageSize  int    `json:"page_size"`
}

var themes = []string{"system", "light", "dark"}

func defaultPreferences() preferences {
	return preferences{Theme: themes[0], List: listDefaults{PageSize: store.DefaultLimit}}
}

// check names the first field out of bounds.
func (p preferences) check() error {
	switch {
	case !slices.Contains(themes, p.Theme):
		return badParam("theme", "must be one of "+strings.Join(themes, ", "))
	case p.List.Status != "" && !slices.Contains(statuses, p.List.Status):
		return badParam("list.status", "must be empty or one of "+strings.Join(statuses, ", "))
	case p.List.RiskLevel != "" && !slices.Contains(riskLevels, p.List.RiskLevel):
		return badParam("list.risk_level", "must be empty or one of "+strings.Join(riskLevels, ", "))
	case p.List.PageSize < 1 || p.List.PageSize > store.MaxLimit:
		return badParam("list.page_size", "must be an integer from 1 to "+strconv.Itoa(store.MaxLimit))
	}
	return nil
}

// getPreferences answers the caller's preferences, the defaults for what
// they never set.
func (s *Server) getPreferences(c *fiber.Ctx) error {
	raw, err := s.deps.Accounts.Preferences.Get(c.UserContext(), ownerOf(c))
	if err != nil {
		return err
	}
	p := defaultPreferences()
	if raw != nil {
		// Stored after check: a document that no longer reads (a field
		// since renamed) falls back to the defaults instead of failing.
		stored := p
		if json.Unmarshal(raw, &stored) == nil && stored.check() == nil {
			p = stored
		}
	}
	return c.JSON(p)
}

// putPreferences replaces the caller's preferences. A field left out takes
// its default; an unknown field or a value out of bounds is refused,
// naming the field.
func (s *Server) putPreferences(c *fiber.Ctx) error {
	p := defaultPreferences()
	if err := decodeBody(c, &p, `of preferences: {"theme", "list": {"status", "risk_level", "page_size"}}`); err != nil {
		return err
	}
	if err := p.check(); err != nil {
		return err
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := s.deps.Accounts.Preferences.Put(c.UserContext(), ownerOf(c), raw); err != nil {
		return err
	}
	return c.JSON(p)
}
