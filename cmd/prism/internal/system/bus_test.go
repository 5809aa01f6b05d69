package system_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/jsbind"
	"github.com/aiprism/prism/platform/natsembed"
	"github.com/aiprism/prism/platform/obs"
	"github.com/aiprism/prism/platform/quota"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/platform/testenv/workspace"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// bus is an embedded NATS server run with deploy/nats/auth.conf, the file
// shipped for compose and Kubernetes, and made-up passwords.
type bus struct {
	url  string
	auth system.BusAuth
}

// startBus starts the server. The passwords reach auth.conf through the
// process environment, as in a container: tests using it cannot run in
// parallel.
func startBus(t *testing.T) bus {
	t.Helper()
	root, err := workspace.Root()
	if err != nil {
		t.Fatal(err)
	}
	auth := system.NewBusAuth()
	for k, v := range auth.ServerEnv() {
		t.Setenv(k, v)
	}
	ns, err := natsembed.Start(t.Context(), natsembed.Options{Dir: t.TempDir(), ConfigFile: system.AuthConfPath(root)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return bus{url: ns.ClientURL(), auth: auth}
}

// env is base with NATS_URL and user's NATS_USER and NATS_PASSWORD.
func (b bus) env(base map[string]string, user string) config.Getenv {
	over := map[string]string{"NATS_URL": b.url}
	for k, v := range b.auth.ClientEnv(user) {
		over[k] = v
	}
	return config.Overlay(config.MapEnv(base), over)
}

// setup runs `prism setup` as admin.
func (b bus) setup(t *testing.T) {
	t.Helper()
	if err := system.Setup(t.Context(), b.env(nil, system.AdminUser), zerolog.Nop()); err != nil {
		t.Fatalf("prism setup: %v", err)
	}
}

// client is a connection as one user, with its inbox prefix, that
// records the permission violations the server reports.
type client struct {
	nc *nats.Conn
	js jetstream.JetStream
	mu sync.Mutex
	vs []string
}

func (b bus) connect(t *testing.T, user string) *client {
	t.Helper()
	c := &client{}
	nc, err := nats.Connect(b.url, nats.UserInfo(user, b.auth[user]), nats.CustomInboxPrefix("_INBOX_"+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.vs = append(c.vs, err.Error())
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	c.js, _ = jetstream.New(nc)
	return c
}

// refused waits for the server to report a violation naming subject.
func (c *client) refused(subject string) bool {
	_ = c.nc.Flush()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, v := range c.vs {
			if strings.Contains(v, `"`+subject+`"`) {
				c.mu.Unlock()
				return true
			}
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// pubRefused publishes on subject and reports whether the server refused.
func (c *client) pubRefused(t *testing.T, subject string) bool {
	t.Helper()
	if err := c.nc.Publish(subject, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	return c.refused(subject)
}

// subRefused subscribes to subject and reports whether the server refused.
func (c *client) subRefused(t *testing.T, subject string) bool {
	t.Helper()
	if _, err := c.nc.SubscribeSync(subject); err != nil {
		t.Fatal(err)
	}
	return c.refused(subject)
}

// stored publishes an event on subject through JetStream and reports
// whether the stream acknowledged it: the user may publish there.
func (c *client) stored(t *testing.T, subject string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := c.js.Publish(ctx, subject, []byte("{}"))
	return err == nil
}

// tokenCounter adds 7 tokens to a token counter (the analyzer's count)
// when add, and otherwise is refused adding them (the API's), then reads
// the counter directly: 7 either way.
func (c *client) tokenCounter(t *testing.T, add bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	const subject = quota.UsageRoot + ".u1.20250101"
	msg := nats.NewMsg(subject)
	msg.Header.Set("Nats-Incr", "7")
	if add {
		if _, err := c.js.PublishMsg(ctx, msg); err != nil {
			t.Errorf("the analyzer may count tokens on %s: %v", subject, err)
		}
	} else {
		if err := c.nc.PublishMsg(msg); err != nil {
			t.Fatal(err)
		}
		if !c.refused(subject) {
			t.Errorf("counted tokens on %s", subject)
		}
	}
	usage, err := c.js.Stream(ctx, quota.UsageStream)
	if err != nil {
		t.Fatalf("bind %s: %v", quota.UsageStream, err)
	}
	last, err := usage.GetLastMsgForSubject(ctx, subject)
	if err != nil || string(last.Data) != `{"val":"7"}` {
		t.Errorf("read the token counter %s: %v; want 7", subject, err)
	}
}

// Every role runs with its own NATS user of deploy/nats/auth.conf: before
// `prism setup` a role stops naming what is missing; after it (run twice
// at once: it is idempotent), the roles bind and a document goes through
// every stage to a stored assessment, followed over server-sent events.
func TestBusRolesRunAsTheirOwnUsers(t *testing.T) {
	b := startBus(t)
	dev := startDev(t, t.TempDir(), testenv.Postgres(t), map[string]string{"PRISM_DEV_ROLES": "none"})
	base := map[string]string{"API_ADDR": "127.0.0.1:0"}
	for k, v := range dev.RoleEnv {
		base[k] = v
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	// The roles stop before their connections close: a connection closed
	// under a running role stops its consumers, which the role reports as
	// an error.
	ctx, cancel := context.WithCancel(context.Background())
	var running []*system.Running
	var infras []*system.Infra
	t.Cleanup(func() {
		cancel()
		for _, r := range running {
			if err := r.Wait(); err != nil {
				t.Errorf("role stopped with: %v", err)
			}
		}
		for _, in := range infras {
			in.Close()
		}
	})
	start := func(ctx context.Context, name string) (*system.Running, error) {
		roles, err := system.LookupRoles([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		env := b.env(base, name)
		in, err := system.Open(ctx, env, system.NeedsOf(roles), obs.NewRegistry(), log, name)
		if err != nil {
			return nil, err
		}
		infras = append(infras, in)
		return system.StartRoles(ctx, in, env, roles)
	}

	// Before setup: the stage stops at once, naming the stream and the command.
	r, err := start(t.Context(), system.RoleExtractor)
	if err == nil {
		err = r.Wait()
	}
	if !errors.Is(err, jsbind.ErrNotSetUp) || !strings.Contains(err.Error(), "stream DOCS") || !strings.Contains(err.Error(), "prism setup") {
		t.Fatalf("extractor before setup: %v; want an error naming stream DOCS and prism setup", err)
	}
	// The api binds its buckets while it is built.
	if _, err := start(t.Context(), system.RoleAPI); !errors.Is(err, jsbind.ErrNotSetUp) || !strings.Contains(err.Error(), "prism_quota") {
		t.Fatalf("api before setup: %v; want an error naming bucket prism_quota", err)
	}

	var g errgroup.Group
	for range 2 {
		g.Go(func() error { return system.Setup(t.Context(), b.env(nil, system.AdminUser), zerolog.Nop()) })
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("prism setup twice at once: %v", err)
	}

	var api string
	for _, name := range system.RoleNames() {
		r, err := start(ctx, name)
		if err != nil {
			t.Fatalf("start %s as its own user: %v", name, err)
		}
		running = append(running, r)
		if r.APIAddr != "" {
			api = "http://" + r.APIAddr
		}
	}
	id := upload(t, api, "contract.txt", contract)
	d := waitStored(t, api, id)
	if d.Assessment == nil || d.Assessment.Score == 0 {
		t.Fatalf("stored without a score: %+v", d)
	}
	seen := map[string]bool{}
	for _, ev := range followSSE(t, api, id, "") {
		seen[ev.event] = true
	}
	for _, want := range []string{"uploaded", "extracted", "analyzed"} {
		if !seen[want] {
			t.Errorf("the event stream lacks %s: %v", want, seen)
		}
	}
}

// Each user of auth.conf is refused outside its subjects. Every row
// pairs refusals with something the same user may do, so a user the
// server does not know (or a refusal for every subject) fails the test.
func TestBusRefusesEachRoleOutsideItsSubjects(t *testing.T) {
	b := startBus(t)
	b.setup(t)
	const doc = "prism.doc.u1.d1."
	for _, tc := range []struct {
		user      string
		binds     []string // durable consumers it binds: stream/name
		may       []string // published and stored
		mayNotPub []string
		mayNotSub []string
		// counts: adds an increment to the token counter and reads it;
		// onlyReads: reads it, and its increment is refused, leaving it as
		// the analyzer's row (which runs first) left it.
		counts, onlyReads bool
	}{
		{user: system.RoleExtractor, binds: []string{"DOCS/extractor"},
			may: []string{doc + "extracted", doc + "progress", doc + "failed"},
			mayNotPub: []string{doc + "analyzed", doc + "uploaded", "prism.chat.u1.s1.answered", "prism.live.chat.u1.s1",
				"$JS.API.STREAM.CREATE.X", "$JS.API.STREAM.DELETE.DOCS", "$JS.API.CONSUMER.CREATE.DOCS.x", "$JS.API.CONSUMER.DURABLE.CREATE.DOCS.x",
				"$JS.API.CONSUMER.DELETE.DOCS.analyzer", "$JS.API.STREAM.DELETE.KV_prism_quota", "$KV.prism_quota.x", "$JS.API.CONSUMER.MSG.NEXT.DOCS.analyzer"},
			mayNotSub: []string{"_INBOX_api.>", "_INBOX_analyzer.x", "prism.live.chat.>", "prism.doc.>", "$JS.ACK.>"}},
		{user: system.RoleAnalyzer, binds: []string{"DOCS/analyzer", "CHAT/chat"},
			may:       []string{doc + "analyzed", doc + "progress", "prism.chat.u1.s1.answered"},
			mayNotPub: []string{doc + "uploaded", doc + "extracted", "prism.chat.u1.s1.asked", "$JS.API.CONSUMER.DELETE.DOCS.analyzer", "$KV.prism_sessions.x", "prism.intake.u1"},
			mayNotSub: []string{"_INBOX_api.>", "prism.live.chat.>"}, counts: true},
		{user: system.RolePersist, binds: []string{"DOCS/persist", "CHAT/persist-chat"},
			mayNotPub: []string{doc + "analyzed", "prism.chat.u1.s1.asked", "$JS.API.STREAM.PURGE.DOCS", "prism.live.chat.u1.s1"},
			mayNotSub: []string{"_INBOX_extractor.>", "prism.live.chat.>"}},
		{user: system.RoleNotifier, binds: []string{"DOCS/notifier"},
			mayNotPub: []string{doc + "failed", "$KV.prism_quota.x", "$JS.API.CONSUMER.MSG.NEXT.DOCS.persist"},
			mayNotSub: []string{"_INBOX_api.>"}},
		{user: system.RoleIngest, binds: []string{"INTAKE/ingest"},
			may:       []string{doc + "uploaded", doc + "failed"},
			mayNotPub: []string{doc + "extracted", doc + "analyzed", "prism.intake.u1", "$JS.API.CONSUMER.DELETE.INTAKE.ingest"},
			mayNotSub: []string{"prism.intake.>", "_INBOX_api.>"}},
		{user: system.RoleAPI,
			may: []string{doc + "uploaded", "prism.chat.u1.s1.asked"},
			mayNotPub: []string{doc + "analyzed", doc + "progress", "prism.chat.u1.s1.answered", "prism.live.chat.u1.s1",
				"$JS.API.STREAM.DELETE.DOCS", "$JS.API.CONSUMER.CREATE.DOCS.extractor", "$JS.API.CONSUMER.CREATE.DOCS.persist.prism.doc.>",
				"$JS.API.CONSUMER.DELETE.DOCS.extractor", "$JS.API.CONSUMER.DELETE.CHAT.chat", "$KV.prism_router.x"},
			mayNotSub: []string{"_INBOX_analyzer.>", "prism.live.chatsync.>"}, onlyReads: true},
		{user: system.IntakeExampleUser,
			may:       []string{"prism.intake.example"},
			mayNotPub: []string{"prism.intake.other", doc + "uploaded", "$JS.API.INFO"},
			mayNotSub: []string{"_INBOX_api.>", "_INBOX.>"}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			c := b.connect(t, tc.user)
			for _, s := range tc.may {
				if !c.stored(t, s) {
					t.Errorf("%s may publish %s, but it was not stored", tc.user, s)
				}
			}
			for _, d := range tc.binds {
				stream, name, _ := strings.Cut(d, "/")
				if _, err := c.js.Consumer(t.Context(), stream, name); err != nil {
					t.Errorf("%s may bind %s: %v", tc.user, d, err)
				}
			}
			for _, s := range tc.mayNotPub {
				if !c.pubRefused(t, s) {
					t.Errorf("%s published %s", tc.user, s)
				}
			}
			for _, s := range tc.mayNotSub {
				if !c.subRefused(t, s) {
					t.Errorf("%s subscribed to %s", tc.user, s)
				}
			}
			if tc.counts || tc.onlyReads {
				c.tokenCounter(t, tc.counts)
			}
		})
	}
}

// deploy/nats/nats.conf, as compose and Kubernetes mount it: a node of
// the 3-node cluster named by NATS_SERVER_NAME, monitoring on 8222, and
// exactly the users of BusUsers from auth.conf.
func TestNATSConfIsAClusterNodeWithTheRoleUsers(t *testing.T) {
	root, err := workspace.Root()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range system.NewBusAuth().ServerEnv() {
		t.Setenv(k, v)
	}
	t.Setenv("NATS_SERVER_NAME", "nats-2")
	o, err := server.ProcessConfigFile(filepath.Join(root, "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range o.Routes {
		routes = append(routes, r.Host)
	}
	if o.ServerName != "nats-2" || !o.JetStream || o.HTTPPort != 8222 || o.Cluster.Port != 6222 ||
		!slices.Equal(routes, []string{"nats-1:6222", "nats-2:6222", "nats-3:6222"}) {
		t.Errorf("node config: name %q, jetstream %v, http %d, cluster port %d, routes %v", o.ServerName, o.JetStream, o.HTTPPort, o.Cluster.Port, routes)
	}
	var users []string
	for _, u := range o.Users {
		users = append(users, u.Username)
	}
	want := system.BusUsers()
	slices.Sort(users)
	slices.Sort(want)
	if !slices.Equal(users, want) {
		t.Errorf("auth.conf users %v, want %v", users, want)
	}
}
