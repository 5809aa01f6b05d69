package notifier_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/notifier"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
	"github.com/prometheus/client_golang/prometheus"
)

// receiver is a webhook endpoint that records the ids it accepted and can
// be made to refuse every delivery, as a receiver that is down does.
type receiver struct {
	mu       sync.Mutex
	down     bool
	accepted map[string]bool // Webhook-Id
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	r.accepted[req.Header.Get("Webhook-Id")] = true
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// The notifier keeps the promises every stage makes; its effect is a
// delivery the receiver accepted, and a redelivery carries the same
// Webhook-Id, by which receivers drop it.
func TestStageContract(t *testing.T) {
	streamstest.Run(t, func(t *testing.T) *streamstest.Stage {
		js := streamstest.JetStream(t)
		rcv := &receiver{accepted: map[string]bool{}}
		hook := httptest.NewServer(rcv)
		t.Cleanup(hook.Close)
		n := notifier.New(notifier.Config{WebhookURL: hook.URL, Secret: []byte("0123456789abcdef-secret"), Timeout: 5 * time.Second}, prometheus.NewRegistry())
		return &streamstest.Stage{
			JS:       js,
			Consumer: streams.NotifierConsumer,
			Handler:  n.Handle,
			Input: func(t *testing.T, doc string) {
				streamstest.Publish(t, js, doc, streams.Analyzed, streams.AnalyzedData{Score: 42, Level: "medium"})
			},
			Effects: func(t *testing.T, doc string) int {
				rcv.mu.Lock()
				defer rcv.mu.Unlock()
				ids := 0
				for id := range rcv.accepted {
					if strings.HasPrefix(id, doc+":") {
						ids++
					}
				}
				return ids
			},
			// The notifier forwards any analyzed or failed event; what it
			// cannot forward is an envelope that is no event.
			Bad:      func(t *testing.T, doc string) { streamstest.PublishUndecodable(t, js, doc, streams.Analyzed) },
			BadClass: streams.ClassBadEvent,
			Break: func(t *testing.T) func() {
				rcv.setDown(true)
				return func() { rcv.setDown(false) }
			},
		}
	})
}
