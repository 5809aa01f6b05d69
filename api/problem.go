package api

import (
	"errors"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// Problem is an RFC 9457 problem detail, the body of every error answer.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Class is a stable slug programs can switch on (extension member).
	Class string `json:"class,omitempty"`
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// problem returns a Problem for status with a detail for people.
func problem(status int, class, detail string) *Problem {
	return &Problem{
		Type:   "https://aiprism.dev/problems/" + class,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Class:  class,
	}
}

// errorHandler turns every error into problem+json. Unexpected errors are
// logged with the request id and shown as a bare 500: no internals leak.
func errorHandler(log zerolog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var p *Problem
		var fe *fiber.Error
		switch {
		case errors.As(err, &p):
		case errors.As(err, &fe):
			p = problem(fe.Code, "http-"+http.StatusText(fe.Code), fe.Message)
			if fe.Code == fiber.StatusRequestEntityTooLarge {
				p.Class = "too-large"
			}
		default:
			log.Error().Err(err).Str("request_id", requestID(c)).Str("path", c.Path()).Msg("request failed")
			p = problem(fiber.StatusInternalServerError, "internal", "the server could not complete the request; quote request id "+requestID(c))
		}
		p.Instance = c.OriginalURL()
		c.Set(fiber.HeaderContentType, "application/problem+json")
		return c.Status(p.Status).JSON(p, "application/problem+json")
	}
}
