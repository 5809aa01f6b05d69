package api

import (
	"strconv"
	"time"

	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

const localsRequestID = "request_id"

// withRequestID takes the caller's X-Request-ID when it is a safe token, or
// makes one; it becomes the correlation id of the documents the request
// creates, so one id follows a document through every role's logs.
func withRequestID(c *fiber.Ctx) error {
	id := c.Get("X-Request-ID")
	if streams.ValidToken(id) != nil {
		id = streams.NewID()
	}
	c.Locals(localsRequestID, id)
	c.Set("X-Request-ID", id)
	return c.Next()
}

func requestID(c *fiber.Ctx) string {
	id, _ := c.Locals(localsRequestID).(string)
	return id
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	return &httpMetrics{
		requests: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "prism_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"method", "route", "code"})),
		latency: obs.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "prism_http_request_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method", "route"})),
	}
}

func (m *httpMetrics) middleware(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	code := c.Response().StatusCode()
	if err != nil {
		if fe, ok := err.(*fiber.Error); ok {
			code = fe.Code
		} else if p, ok := err.(*Problem); ok {
			code = p.Status
		} else {
			code = fiber.StatusInternalServerError
		}
	}
	// The route pattern, never the raw path: ids would explode the series.
	route := c.Route().Path
	m.requests.WithLabelValues(c.Method(), route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(c.Method(), route).Observe(time.Since(start).Seconds())
	return err
}
