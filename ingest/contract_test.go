package ingest_test

import (
	"context"
	"net/url"
	"sync"
	"testing"

	"github.com/aiprism/prism/ingest"
	"github.com/aiprism/prism/platform/blob"
	"github.com/aiprism/prism/platform/s3local"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
)

// Intake keeps the promises every stage makes; its effect is the stored
// original announced by document.uploaded.
func TestStageContract(t *testing.T) {
	streamstest.Run(t, func(t *testing.T) *streamstest.Stage {
		js := streamstest.JetStream(t)
		s3 := startS3(t)
		pub := streams.NewPublisher(js, "/prism/ingest")
		svc := ingest.NewService(s3.store(t), pub, 1<<20)
		return &streamstest.Stage{
			JS:         js,
			Consumer:   streams.IntakeConsumer,
			MsgHandler: svc.HandleIntake,
			Publisher:  pub,
			Input: func(t *testing.T, doc string) {
				publishIntake(t, js, streamstest.Owner, doc, "contract.txt", []byte("a document sent by another system"))
			},
			// Every document announced for the message, whatever its id.
			Effects: func(t *testing.T, doc string) int {
				n := 0
				for _, ev := range streamstest.Events(t, js, "*", streams.Uploaded) {
					if ev.CorrelationID == "corr-"+doc {
						n++
					}
				}
				return n
			},
			// A subject whose owner can never be a document owner.
			Bad: func(t *testing.T, doc string) {
				if _, err := js.Publish(context.Background(), streams.IntakeRoot+".bad!owner", []byte("x")); err != nil {
					t.Fatal(err)
				}
			},
			BadClass: streams.ClassBadOwner,
			Break:    func(t *testing.T) func() { return s3.outage(t) },
		}
	})
}

// s3 is a local S3 endpoint that can go down and come back at the same
// address with the same objects.
type s3 struct {
	dir, addr string
	mu        sync.Mutex
	srv       *s3local.Server
}

func startS3(t *testing.T) *s3 {
	t.Helper()
	s := &s3{dir: t.TempDir(), addr: "127.0.0.1:0"}
	s.up(t)
	u, err := url.Parse(s.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	s.addr = u.Host
	t.Cleanup(func() { s.down(t) })
	return s
}

func (s *s3) up(t *testing.T) {
	t.Helper()
	srv, err := s3local.Start(context.Background(), s3local.Options{Dir: s.dir, Addr: s.addr, Buckets: []string{testenv.TestBucket}, RequireSSE: true})
	if err != nil {
		t.Fatalf("start S3: %v", err)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

func (s *s3) down(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		if err := srv.Close(context.Background()); err != nil {
			t.Errorf("stop S3: %v", err)
		}
	}
}

// outage takes the endpoint down until back is called.
func (s *s3) outage(t *testing.T) (back func()) {
	s.down(t)
	return func() { s.up(t) }
}

func (s *s3) store(t *testing.T) *blob.Store {
	t.Helper()
	st, err := blob.New(context.Background(), testenv.S3ConfigAt("http://"+s.addr))
	if err != nil {
		t.Fatal(err)
	}
	return st
}
