// Package uitest drives the web application in headless Chromium against
// the whole system started in this process (system.StartDev): the pages as
// a user sees them, through the public API only.
package uitest

import (
	"testing"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/testenv"
)

func TestMain(m *testing.M) {
	// The extractor re-executes this binary as its sandboxed worker.
	system.ServeWorkerIfAsked()
	testenv.Main(m)
}
