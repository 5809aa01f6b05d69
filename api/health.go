package api

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz checks every dependency and names each in the answer, so an
// operator sees which one is down. The answer is public: why a check
// failed (a backend's error text, which may name hosts and users) goes
// to the log only.
func (s *Server) readyz(c *fiber.Ctx) error {
	if s.stopping.Load() {
		// First sign of a shutdown: a load balancer stops sending here.
		return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"status": "stopping", "checks": fiber.Map{}})
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	ready := true
	record := func(name string, err error) {
		if err != nil {
			s.deps.Log.Warn().Err(err).Str("check", name).Msg("readiness check failed")
			checks[name] = "fail"
			ready = false
			return
		}
		checks[name] = "ok"
	}
	if s.deps.NC == nil || !s.deps.NC.IsConnected() {
		record("nats", errNotConnected)
	} else {
		_, err := s.deps.JS.AccountInfo(ctx)
		record("nats", err)
	}
	record("postgres", s.deps.Pool.Ping(ctx))
	record("s3", s.deps.Blobs.Ping(ctx))
	status := fiber.StatusOK
	state := "ready"
	if !ready {
		status, state = fiber.StatusServiceUnavailable, "not ready"
	}
	return c.Status(status).JSON(fiber.Map{"status": state, "checks": checks})
}

type constError string

func (e constError) Error() string { return string(e) }

const errNotConnected = constError("not connected")
