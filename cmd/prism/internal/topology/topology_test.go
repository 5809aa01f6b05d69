package topology_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/cmd/prism/internal/topology"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const contract = `SUPPLY AGREEMENT
1. Liability. The Customer accepts unlimited liability for all direct and indirect damages.
2. Indemnity. The Customer shall indemnify the Supplier against any claims brought by third parties.
`

func apis(tp *topology.Topology) []string {
	var urls []string
	for _, r := range tp.Roles(system.RoleAPI) {
		urls = append(urls, r.URL())
	}
	return urls
}

// submitter uploads documents, each followed by an SSE client of its
// own, and keeps what they saw.
type submitter struct {
	ctx      context.Context
	urls     []string
	mu       sync.Mutex
	ids      []string
	followed map[string]*topology.Followed
	errs     []error
	wg       sync.WaitGroup
}

func newSubmitter(ctx context.Context, tp *topology.Topology) *submitter {
	return &submitter{ctx: ctx, urls: apis(tp), followed: map[string]*topology.Followed{}}
}

// submit uploads documents one after another, every interval, until stop.
func submit(ctx context.Context, tp *topology.Topology, every time.Duration, stop <-chan struct{}) *submitter {
	s := newSubmitter(ctx, tp)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
			s.add(i, nil)
		}
	}()
	return s
}

// add uploads document i and follows it from api i (mod the apis),
// calling seen with each event its client receives.
func (s *submitter) add(i int, seen func(kind string)) {
	id, err := topology.Upload(s.ctx, s.urls, fmt.Sprintf("contract-%d.txt", i), fmt.Sprintf("%s\nCopy %d.\n", contract, i))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.ids = append(s.ids, id)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f, err := topology.Follow(s.ctx, s.urls, i, id, seen)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.followed[id] = f
		if err != nil {
			s.errs = append(s.errs, err)
		}
	}()
}

func (s *submitter) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.ids) }

// checkLedger: every document in DOCS ends analyzed exactly once, with
// one analyzed row in PostgreSQL, and every SSE client saw exactly the
// stream's events of its document, in order, up to analyzed.
func checkLedger(t *testing.T, tp *topology.Topology, s *submitter) {
	t.Helper()
	s.wg.Wait()
	for _, err := range s.errs {
		t.Error(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := tp.JetStream()
	var ledger map[string]*topology.DocLedger
	testenv.Eventually(t, 60*time.Second, "every document in DOCS analyzed", func() bool {
		var err error
		if ledger, err = topology.Ledger(ctx, js); err != nil {
			t.Logf("ledger: %v", err)
			return false
		}
		for _, d := range ledger {
			if d.Analyzed == 0 {
				return false
			}
		}
		return true
	})
	if len(ledger) != len(s.ids) {
		t.Errorf("DOCS holds %d documents, the clients uploaded %d", len(ledger), len(s.ids))
	}
	for id, d := range ledger {
		if d.Uploaded != 1 || d.Analyzed != 1 {
			t.Errorf("document %s: %d uploaded and %d analyzed events, want 1 each: %v", id, d.Uploaded, d.Analyzed, d.Kinds)
		}
	}
	conn, err := pgx.Connect(ctx, tp.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	testenv.Eventually(t, 30*time.Second, "every document projected as analyzed", func() bool {
		var docs, analyzed, assessments int
		err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'analyzed'),
			(SELECT count(*) FROM assessments) FROM documents`).Scan(&docs, &analyzed, &assessments)
		if err != nil {
			t.Logf("ledger rows: %v", err)
			return false
		}
		if docs == len(ledger) && analyzed == docs && assessments == docs {
			return true
		}
		t.Logf("PostgreSQL: %d documents, %d analyzed, %d assessments; DOCS: %d", docs, analyzed, assessments, len(ledger))
		return false
	})
	reconnects := 0
	for id, f := range s.followed {
		d := ledger[id]
		want := d.Seqs
		for i, k := range d.Kinds {
			if k == string(streams.Analyzed) {
				want = d.Seqs[:i+1]
				break
			}
		}
		if fmt.Sprint(f.Seqs) != fmt.Sprint(want) {
			t.Errorf("document %s: the SSE client saw %v %v, the stream holds %v %v", id, f.Seqs, f.Kinds, want, d.Kinds[:len(want)])
		}
		reconnects += f.Reconnects
	}
	t.Logf("%d documents in DOCS; %d SSE clients, %d reconnections", len(ledger), len(s.followed), reconnects)
}

// TestTopologyDocumentGoesThrough: the deployment's topology as processes
// (three NATS nodes with the shipped permissions, replicated streams, two
// analyzers, two extractors, two APIs, each role its own NATS user): a
// document uploaded over HTTP is analyzed, once, and no role's user may
// publish an event of another stage.
func TestTopologyDocumentGoesThrough(t *testing.T) {
	tp := topology.Start(t, topology.Options{})
	for _, role := range system.RoleNames() {
		subject := "prism.doc.owner.doc.uploaded" // the api's and ingest's event
		if role == system.RoleAPI || role == system.RoleIngest {
			subject = "prism.doc.owner.doc.analyzed" // the analyzer's
		}
		if err := publishRefused(tp, role, subject); err != nil {
			t.Errorf("user %s: %v", role, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := make(chan struct{})
	s := submit(ctx, tp, 0, stop)
	testenv.Eventually(t, 30*time.Second, "three documents uploaded", func() bool { return s.count() >= 3 })
	close(stop)
	checkLedger(t, tp, s)
	if n, err := topology.CurrentReplicas(ctx, tp.JetStream(), streams.DocsStream); err != nil || n != 3 {
		t.Fatalf("DOCS has %d current replicas (%v), want 3", n, err)
	}
}

// publishRefused checks that the cluster refuses user's publication on
// subject as a permissions violation.
func publishRefused(tp *topology.Topology, user, subject string) error {
	errs := make(chan error, 1)
	nc, err := tp.Connect(user, nats.CustomInboxPrefix("_INBOX_"+user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	if err := nc.Publish(subject, []byte("{}")); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	_ = nc.Flush()
	select {
	case err := <-errs:
		if errors.Is(err, nats.ErrPermissionViolation) {
			return nil
		}
		return fmt.Errorf("publish %s: %v, want a permissions violation", subject, err)
	case <-time.After(3 * time.Second):
		return fmt.Errorf("published %s: not refused", subject)
	}
}

// long is whether the chaos tests run their long form (make chaos sets
// PRISM_CHAOS=long): more documents through each fault. The short form
// runs in make test.
func long() bool { return os.Getenv("PRISM_CHAOS") == "long" }

// TestChaosNATSNodeLoss: while documents are submitted, one NATS node is
// killed with SIGKILL; documents keep flowing and every one is analyzed
// exactly once; restarted on its data, the node catches up and DOCS has
// three current replicas again.
func TestChaosNATSNodeLoss(t *testing.T) {
	every, before, after := 300*time.Millisecond, 3, 4
	if long() {
		every, before, after = 100*time.Millisecond, 5, 15
	}
	tp := topology.Start(t, topology.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stop := make(chan struct{})
	s := submit(ctx, tp, every, stop)
	testenv.Eventually(t, 30*time.Second, "documents flowing", func() bool { return s.count() >= before })
	victim := tp.Nodes[1]
	victim.Kill()
	killedAt := s.count()
	testenv.Eventually(t, 60*time.Second, "documents flowing with a node down", func() bool { return s.count() >= killedAt+after })
	close(stop)
	checkLedger(t, tp, s)

	js := tp.JetStream()
	if n, _ := topology.CurrentReplicas(ctx, js, streams.DocsStream); n != 2 {
		t.Logf("with a node down DOCS has %d current replicas", n)
	}
	victim.Start(t)
	testenv.Eventually(t, 60*time.Second, "the restarted node current again", func() bool {
		n, err := topology.CurrentReplicas(ctx, js, streams.DocsStream)
		return err == nil && n == 3
	})
}

// TestChaosRollingRestart: every role process is restarted in turn
// (SIGTERM, wait for its exit, start again) while documents are submitted
// over HTTP and SSE clients follow each: every document ends analyzed
// exactly once, and no client misses an event or sees one twice, across
// the API restarts too (the retry: hint, Last-Event-ID, the other API).
// The short form uploads one document just before each restart and waits
// until its SSE client has its first event (followed on the api being
// restarted, if it is one), so that each restart happens with a document
// in flight and a client attached; the long form submits continuously.
func TestChaosRollingRestart(t *testing.T) {
	grace, speed := 5*time.Second, 0.0
	if !long() {
		// Realistic Bedrock latency: each document is still in flight when
		// the role after its upload restarts, an api included; a grace
		// shorter than an analysis makes a stopping analyzer cut its work
		// short and hand it back.
		grace, speed = time.Second, 1
	}
	tp := topology.Start(t, topology.Options{Env: map[string]string{"SHUTDOWN_GRACE": grace.String()}, SimSpeed: speed})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var s *submitter
	stop := make(chan struct{})
	if long() {
		s = submit(ctx, tp, 150*time.Millisecond, stop)
		testenv.Eventually(t, 30*time.Second, "documents flowing", func() bool { return s.count() >= 3 })
	} else {
		s = newSubmitter(ctx, tp)
	}
	for k, r := range tp.Roles() {
		if !long() {
			first := k
			if r.Name == system.RoleAPI {
				first = r.Index // Follow starts at apis[first], the api restarted next
			}
			attached := make(chan struct{})
			var once sync.Once
			s.add(first, func(string) { once.Do(func() { close(attached) }) })
			select {
			case <-attached:
			case <-time.After(30 * time.Second):
				t.Fatalf("document %d: its SSE client saw no event in 30s", k)
			}
		}
		old := r.Process()
		took := tp.Restart(r, grace+5*time.Second)
		t.Logf("%s %d stopped in %s, handing back %d messages", r.Name, r.Index, took.Round(time.Millisecond),
			strings.Count(old.Output(), "handed back"))
		if took > grace+3*time.Second {
			t.Errorf("%s %d took %s to stop, beyond SHUTDOWN_GRACE %s", r.Name, r.Index, took, grace)
		}
	}
	if long() {
		time.Sleep(time.Second)
		close(stop)
	}
	checkLedger(t, tp, s)
	hints, reconnects := 0, 0
	for _, f := range s.followed {
		hints, reconnects = hints+f.RetryHints, reconnects+f.Reconnects
	}
	t.Logf("SSE clients got %d retry hints from stopping APIs", hints)
	if !long() && reconnects == 0 {
		t.Error("no SSE client resumed its stream across an api restart: the resume was not exercised")
	}
}
