package api

import (
	"errors"
	"net/http"
	"strconv"

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
			p = problem(fe.Code, fiberClass(fe.Code), fe.Message)
		default:
			log.Error().Err(err).Str("request_id", requestID(c)).Str("path", c.Path()).Msg("request failed")
			p = problem(fiber.StatusInternalServerError, "internal", "the server could not complete the request; quote request id "+requestID(c))
		}
		p.Instance = c.OriginalURL()
		c.Set(fiber.HeaderContentType, "application/problem+json")
		return c.Status(p.Status).JSON(p, "application/problem+json")
	}
}

// fiberClass names the errors Fiber itself raises: no route for the path,
// a path without this method, a body over the limit.
func fiberClass(code int) string {
	switch code {
	case fiber.StatusNotFound:
		return "no-route"
	case fiber.StatusMethodNotAllowed:
		return "method-not-allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "too-large"
	}
	return "http-" + strconv.Itoa(code)
}

// Problem classes the API's clients can switch on.
const (
	classNotFound    = "not-found"
	classBadParam    = "bad-parameter"
	classConflict    = "conflict"
	classNotReady    = "not-ready"
	classStorage     = "storage-unavailable"
	classUnavailable = "unavailable" // a backend needed to answer (or to authorize) did not answer
	classTooLarge    = "too-large"
	classNoText      = "no-text"
	classNoAnalysis  = "no-assessment"
)

// badParam is a 400 naming the parameter at fault.
func badParam(name, detail string) *Problem {
	return problem(fiber.StatusBadRequest, classBadParam, name+": "+detail)
}
