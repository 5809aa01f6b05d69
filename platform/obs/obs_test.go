package obs

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestLogLinesHideConnectionCredentials: an error quoting connection
// strings (as pgx, nats and the AWS SDK may) is logged without their
// credentials, in both formats, and the rest of the line is kept.
func TestLogLinesHideConnectionCredentials(t *testing.T) {
	const password = "pg-s3cr3t"
	const natsToken = "nats-t0ken"
	err := errors.New(`connect "postgres://prism:` + password + `@db:5432/prism" and nats://` + natsToken + `@nats:4222: refused`)
	for _, format := range []string{"json", "console"} {
		var out bytes.Buffer
		log := NewLogger(&out, LogConfig{Level: zerolog.InfoLevel, Format: format})
		log.Error().Err(err).Str("dsn", "host=db user=prism password="+password).Msg("start failed")
		got := out.String()
		if strings.Contains(got, password) || strings.Contains(got, natsToken) {
			t.Errorf("%s: the log line holds a credential: %s", format, got)
		}
		for _, want := range []string{"start failed", "db:5432/prism", "nats:4222: refused", "user=prism"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: the log line lost %q: %s", format, want, got)
			}
		}
	}
}
