// Package bench measures AI-Prism on this machine: the pipeline end to end
// as users see it, API reads, SSE delivery, model capacity and the
// chatbot's time to first token, each next to a reference measured in the
// same run (raw JetStream on the same server and storage; the Bedrock
// simulator called directly), so the figures mean something on a noisy
// machine.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aiprism/prism/analyzer"
	"github.com/aiprism/prism/analyzer/bedrock"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/platform/config"
	"github.com/aiprism/prism/platform/obs"
	"github.com/rs/zerolog"
)

// Options choose the scenarios and their sizes.
type Options struct {
	// Scenario names the scenarios to run (see Scenarios); "" is all.
	Scenario    string
	Quick       bool
	CorpusDir   string
	DatabaseURL string // empty: a local PostgreSQL under a temp dir
	Documents   int
	Users       int
	APIClients  int
	APIDuration time.Duration
	APIRate     float64 // requests/s of the paced API scenario, all clients together
	SSEDocs     int
	SSEPerDoc   int
	RefMessages int
	PacedRate   float64       // documents/s of the paced scenario
	PacedFor    time.Duration // how long it runs
	Capacity    bool
	// Chats is the chat scenario's concurrent chats, each asking
	// ChatQuestions questions in turn, with the simulator at ChatSpeed
	// (1: realistic time to first token and token rate; 0 means 1).
	Chats         int
	ChatQuestions int
	ChatSpeed     float64
	// ChatRamp spreads the chats' first questions (0: 3 s at speed 1,
	// about one question's time, scaled by ChatSpeed; negative: none).
	ChatRamp time.Duration
	// InProcess runs every role inside the benchmark process (like `prism
	// dev`); otherwise each role is its own process of Binary, so CPU and
	// memory are measured per role.
	InProcess bool
	Binary    string
	// The small scenario: Users upload Documents documents of about
	// DocBytes each per round, Rounds rounds on one fresh system, each
	// document followed by Follow (FollowPoll or FollowSSE); Offered > 0
	// uploads at that many documents/s whatever the latency.
	DocBytes int
	Follow   string
	Offered  float64
	Rounds   int
	// CPUProfile and MemProfile, when set, name the bench process's
	// profiles; each role process writes its own to <path>.<role>.
	CPUProfile string
	MemProfile string
	Log        zerolog.Logger
}

// First copy numbers (see unique) of the scenarios, far enough apart that
// no two uploads of a run share a text, which the result cache would serve.
const (
	firstPipeline = 0
	firstSSE      = 1_000_000 // and sseRunGap more for each further run
	sseRunGap     = 100_000
	firstPaced    = 2_000_000
	firstWarmUp   = 3_000_000
)

// sseRuns are the document counts of the SSE scenario's runs: the size
// asked for and, when that is over 1,000 streams, a run of 1,000 streams
// first, the size the aim names beside 10,000.
func (o Options) sseRuns() []int {
	const aim = 1000
	if o.SSEDocs*o.SSEPerDoc > aim && aim/o.SSEPerDoc > 0 {
		return []int{aim / o.SSEPerDoc, o.SSEDocs}
	}
	return []int{o.SSEDocs}
}

// The values of Options.Scenario.
const (
	ScenarioAll  = "all"  // every scenario but capacity (which -capacity adds)
	ScenarioChat = "chat" // the chat scenario and its reference
	// ScenarioSmall is many small text documents, polled to completion,
	// and the raw JetStream reference.
	ScenarioSmall = "small"
)

// Parts of a run, each on a system of its own: the simulator's speed is a
// setting of the system.
const (
	partDocuments = "documents" // raw JetStream, pipeline, paced pipeline, API, SSE; simulator at zero latency
	partChat      = "chat"      // chats and the simulator alone, at ChatSpeed
	partSmall     = "small"     // small documents on a fresh system, raw JetStream after them
)

// scenarios are the parts each value of -scenario runs, in order.
var scenarios = map[string][]string{
	ScenarioAll:   {partDocuments, partChat},
	ScenarioChat:  {partChat},
	ScenarioSmall: {partSmall},
}

// Scenarios are the values Options.Scenario takes.
func Scenarios() []string { return slices.Sorted(maps.Keys(scenarios)) }

// parts are the parts the options run.
func (o Options) parts() ([]string, error) {
	p, ok := scenarios[o.Scenario]
	if !ok {
		return nil, fmt.Errorf("scenario %q: want one of %s", o.Scenario, strings.Join(Scenarios(), ", "))
	}
	return p, nil
}

// Defaults fills unset sizes, smaller when Quick.
func (o Options) Defaults() Options {
	def := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if o.Quick {
				*v = quick
			}
		}
	}
	if o.Scenario == ScenarioSmall {
		def(&o.Users, 40, 10)
	}
	def(&o.Documents, 2000, 300)
	def(&o.Users, 50, 20)
	def(&o.DocBytes, 1024, 1024)
	def(&o.Rounds, 1, 1)
	if o.Follow == "" {
		o.Follow = FollowPoll
	}
	def(&o.APIClients, 100, 100)
	def(&o.SSEDocs, 1000, 20)
	def(&o.SSEPerDoc, 10, 10)
	def(&o.RefMessages, 20000, 5000)
	def(&o.Chats, 50, 50)
	def(&o.ChatQuestions, 10, 3)
	if o.Scenario == "" {
		o.Scenario = ScenarioAll
	}
	if o.ChatSpeed <= 0 {
		o.ChatSpeed = 1
	}
	if o.ChatRamp == 0 {
		o.ChatRamp = time.Duration(3 * o.ChatSpeed * float64(time.Second))
	}
	if o.APIRate <= 0 {
		o.APIRate = 500
	}
	if o.PacedRate <= 0 {
		o.PacedRate = 10
	}
	if o.PacedFor <= 0 {
		o.PacedFor = 20 * time.Second
		if o.Quick {
			o.PacedFor = 8 * time.Second
		}
	}
	if o.APIDuration <= 0 {
		o.APIDuration = 10 * time.Second
		if o.Quick {
			o.APIDuration = 3 * time.Second
		}
	}
	return o
}

// Report is everything one run measured. The documents scenarios' fields
// are zero when they did not run (see Scenario).
type Report struct {
	When      time.Time       `json:"when"`
	Host      string          `json:"host"`
	Cores     int             `json:"cores"`
	Scenario  string          `json:"scenario"`
	Reference ReferenceResult `json:"reference"`
	Pipeline  PipelineResult  `json:"pipeline"`
	// Paced is the pipeline at a fixed arrival rate below saturation.
	Paced PipelineResult `json:"pipeline_paced"`
	// Ratio is pipeline documents/s over raw JetStream messages/s.
	Ratio float64   `json:"pipeline_to_reference_ratio"`
	API   APIResult `json:"api"`
	// APIPaced is the same clients at a fixed total request rate.
	APIPaced APIResult `json:"api_paced"`
	// SSE has a result per run, fewest streams first.
	SSE      []SSEResult     `json:"sse"`
	Capacity *CapacityResult `json:"capacity,omitempty"`
	Chat     *ChatResult     `json:"chat,omitempty"`
	Small    *SmallResult    `json:"small,omitempty"`
	// Process and Roles are what the documents scenarios' system used;
	// Roles is CPU and peak memory per role process (not with InProcess).
	Process  ProcessResources `json:"process"`
	Roles    []system.Usage   `json:"roles,omitempty"`
	Profiles []Profile        `json:"profiles,omitempty"`
}

// Profile is a profile file the run wrote.
type Profile struct {
	Path string `json:"path"`
	What string `json:"what"`
}

// ProcessResources is what the whole in-process system used.
type ProcessResources struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMB  float64 `json:"peak_rss_mb"`
}

// Run starts the system as `prism dev` does and runs the scenarios: those
// about documents with the Bedrock simulator at zero latency and quotas
// too large to matter (so the pipeline itself is measured), the chat
// scenario on a system of its own with the simulator at ChatSpeed.
func Run(ctx context.Context, o Options) (_ *Report, err error) {
	o = o.Defaults()
	parts, err := o.parts()
	if err != nil {
		return nil, err
	}
	// The small scenario profiles the bench process round by round.
	if o.CPUProfile != "" && o.Scenario != ScenarioSmall {
		stopCPU, err := system.StartCPUProfile(o.CPUProfile)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, stopCPU()) }()
	}
	rep := &Report{When: time.Now().UTC(), Cores: numCPU(), Scenario: o.Scenario, Profiles: o.profiles(parts)}
	rep.Host, _ = os.Hostname()
	for _, part := range parts {
		switch part {
		case partDocuments:
			err = runDocuments(ctx, o, rep)
		case partChat:
			rep.Chat, err = runChat(ctx, o)
		case partSmall:
			rep.Small, err = runSmall(ctx, o)
		}
		if err != nil {
			return nil, err
		}
	}
	if o.Capacity {
		o.Log.Info().Msg("bench: capacity")
		cr, err := Capacity(ctx, o)
		if err != nil {
			return nil, fmt.Errorf("capacity: %w", err)
		}
		rep.Capacity = &cr
	}
	return rep, nil
}

// profiles are the files a run of parts writes: the bench process's and,
// with a process per role, each role's of each part's system.
func (o Options) profiles(parts []string) []Profile {
	var out []Profile
	for _, p := range []struct{ path, kind string }{{o.CPUProfile, "CPU"}, {o.MemProfile, "heap"}} {
		if p.path == "" {
			continue
		}
		if p.kind == "CPU" && o.Scenario != ScenarioSmall {
			out = append(out, Profile{Path: p.path, What: "CPU, bench process"})
		}
		for _, part := range parts {
			if p.kind == "CPU" && part == partSmall {
				for r := 1; r <= o.Rounds; r++ {
					out = append(out, Profile{Path: o.roundProfile(strconv.Itoa(r)), What: fmt.Sprintf("CPU, bench process, round %d", r)})
				}
			}
			if p.kind == "heap" {
				out = append(out, Profile{Path: profilePath(p.path, part, ""), What: "heap, bench process, " + part + " system"})
			}
			if o.InProcess {
				continue
			}
			for _, role := range system.RoleNames() { // every role once
				out = append(out, Profile{Path: profilePath(p.path, part, role), What: p.kind + ", role " + role + ", " + part + " system"})
			}
			if p.kind == "CPU" {
				out = append(out, Profile{Path: system.WorkerProfileDir(profilePath(p.path, part, system.RoleExtractor)) + "/",
					What: "CPU, extraction workers, a file each (pprof merges them), " + part + " system"})
			}
		}
	}
	return out
}

// profilePath is where a profile asked for at base is written for role
// ("": the bench process) of part's system: the documents system's are
// <base>[.<role>], the others' <base>.<part>[.<role>].
func profilePath(base, part, role string) string {
	if part != partDocuments {
		base += "." + part
	}
	if role != "" {
		base += "." + role
	}
	return base
}

// runDocuments runs the scenarios about documents on one system and
// records what its processes used.
func runDocuments(ctx context.Context, o Options, rep *Report) error {
	env, cleanup, err := benchEnv(o, 0, nil)
	if err != nil {
		return err
	}
	defer cleanup()
	conns := max(o.Users, o.APIClients, o.SSEDocs*o.SSEPerDoc)
	rep.Process, rep.Roles, err = withSystem(ctx, o, partDocuments, env, func(s *benchSystem) error {
		return documentScenarios(ctx, o, s.dev, newClient(s.apiURL, conns), rep)
	})
	return err
}

// runSmall runs the small scenario on a system of its own.
func runSmall(ctx context.Context, o Options) (*SmallResult, error) {
	if o.Follow != FollowPoll && o.Follow != FollowSSE {
		return nil, fmt.Errorf("follow %q: want %s or %s", o.Follow, FollowPoll, FollowSSE)
	}
	env, cleanup, err := benchEnv(o, 0, nil)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var res *SmallResult
	process, roles, err := withSystem(ctx, o, partSmall, env, func(s *benchSystem) error {
		var err error
		res, err = smallScenario(ctx, o, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	res.Process, res.Roles = process, roles
	return res, nil
}

// runChat runs the chat scenario and its reference on a system with the
// simulator at o.ChatSpeed.
func runChat(ctx context.Context, o Options) (*ChatResult, error) {
	env, cleanup, err := benchEnv(o, o.ChatSpeed, nil)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	var res ChatResult
	res.Process, res.Roles, err = withSystem(ctx, o, partChat, env, func(s *benchSystem) error {
		var err error
		res, err = chatScenario(ctx, o, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// chatScenario runs the chats, then the reference at their concurrency
// with their conversations.
func chatScenario(ctx context.Context, o Options, s *benchSystem) (ChatResult, error) {
	cfg, err := s.analyzerConfig()
	if err != nil {
		return ChatResult{}, err
	}
	sim, err := bedrock.NewClient(ctx, cfg.Bedrock)
	if err != nil {
		return ChatResult{}, err
	}
	o.Log.Info().Int("chats", o.Chats).Int("questions", o.ChatQuestions).Float64("speed", o.ChatSpeed).Msg("bench: chat")
	res := Chat(ctx, newClient(s.apiURL, 2*o.Chats), o.Chats, o.ChatQuestions, max(o.ChatRamp, 0))
	res.SimSpeed = o.ChatSpeed
	o.Log.Info().Int("chats", o.Chats).Msg("bench: chat reference (the simulator alone)")
	res.Reference = ChatReference(ctx, sim, cfg, res.transcript)
	res.Added = addedBetween(res.FirstToken, res.Reference.FirstToken)
	return res, nil
}

// benchSystem is a benchmark system running.
type benchSystem struct {
	dev    *system.Dev
	env    config.Getenv // the roles' environment, the embedded services' addresses included
	apiURL string
	procs  *roleProcesses // nil with the roles in this process
}

// analyzerConfig is the analyzer role's configuration in s.
func (s *benchSystem) analyzerConfig() (analyzer.Config, error) {
	l := config.New(s.env)
	cfg := analyzer.ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// withSystem starts the system of part with env (its roles in this
// process or one process each), runs fn on it and returns what its
// processes used.
func withSystem(ctx context.Context, o Options, part string, env config.Getenv, fn func(*benchSystem) error) (ProcessResources, []system.Usage, error) {
	if !o.InProcess {
		env = config.Overlay(env, map[string]string{"PRISM_DEV_ROLES": "none", "PRISM_DEV_NATS_PORT": "0"})
	}
	dev, stop, err := startDev(ctx, env, o.Log)
	if err != nil {
		return ProcessResources{}, nil, err
	}
	defer stop()
	s := &benchSystem{dev: dev, env: config.Overlay(env, dev.RoleEnv), apiURL: dev.APIURL}
	var procs *roleProcesses
	if !o.InProcess {
		if procs, err = startRoleProcesses(ctx, o, part, dev, env); err != nil {
			return ProcessResources{}, nil, err
		}
		defer procs.stop()
		s.apiURL, s.procs = procs.apiURL, procs
	}
	before := usage()
	if err := fn(s); err != nil {
		return ProcessResources{}, nil, err
	}
	// The heap is of interest while the system runs; the role processes
	// write theirs when asked to stop, before they shut down.
	if o.MemProfile != "" {
		if err := system.WriteHeapProfile(profilePath(o.MemProfile, part, "")); err != nil {
			return ProcessResources{}, nil, err
		}
	}
	var roles []system.Usage
	if procs != nil {
		if roles, err = procs.stop(); err != nil {
			return ProcessResources{}, nil, err
		}
	}
	// The role processes are reaped children: their CPU is in ours, and
	// reported on their own rows.
	after := usage()
	cpu := after.cpu - before.cpu
	for _, r := range roles {
		cpu -= r.CPUSeconds
	}
	return ProcessResources{CPUSeconds: cpu, PeakRSSMB: after.rssMB}, roles, nil
}

// documentScenarios runs reference, pipeline, paced pipeline, API and SSE.
func documentScenarios(ctx context.Context, o Options, dev *system.Dev, c *client, rep *Report) error {
	corpus := LoadCorpus(o.CorpusDir)
	var err error
	o.Log.Info().Msg("bench: reference (raw JetStream)")
	if rep.Reference, err = Reference(ctx, dev.Infra.JS, o.RefMessages, o.Users); err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	o.Log.Info().Msg("bench: warm-up")
	if _, err := Pipeline(ctx, c, corpus, 2*o.Users, o.Users, firstWarmUp); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	o.Log.Info().Int("documents", o.Documents).Int("users", o.Users).Msg("bench: pipeline")
	if rep.Pipeline, err = Pipeline(ctx, c, corpus, o.Documents, o.Users, firstPipeline); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	rep.Ratio = rep.Pipeline.DocsPerSec / rep.Reference.MsgsPerSec
	o.Log.Info().Float64("rate", o.PacedRate).Msg("bench: paced pipeline")
	rep.Paced = PipelinePaced(ctx, c, corpus, o.PacedRate, o.PacedFor)
	o.Log.Info().Int("clients", o.APIClients).Msg("bench: api")
	rep.API = API(ctx, c, rep.Pipeline.IDs, o.APIClients, o.APIDuration, 0)
	o.Log.Info().Int("clients", o.APIClients).Float64("rate", o.APIRate).Msg("bench: api paced")
	rep.APIPaced = API(ctx, c, rep.Pipeline.IDs, o.APIClients, o.APIDuration, o.APIRate)
	for i, docs := range o.sseRuns() {
		o.Log.Info().Int("streams", docs*o.SSEPerDoc).Msg("bench: sse")
		r, err := SSE(ctx, c, corpus, docs, o.SSEPerDoc, firstSSE+i*sseRunGap)
		if err != nil {
			return err
		}
		rep.SSE = append(rep.SSE, r)
	}
	return nil
}

// benchEnv is the environment of a benchmark system: a fresh data
// directory, loopback listeners on free ports, and model quotas given by
// rpm (0 = too large to matter).
func benchEnv(o Options, simSpeed float64, chain router.Chain) (config.Getenv, func(), error) {
	dir, err := os.MkdirTemp("", "prism-bench-")
	if err != nil {
		return nil, nil, err
	}
	_ = os.Chmod(dir, 0o755) // PostgreSQL runs as the postgres user when we are root
	cleanup := func() { _ = os.RemoveAll(dir) }
	if chain == nil {
		chain = router.DefaultChain()
		for i := range chain {
			chain[i].RequestsPerMinute, chain[i].TokensPerMinute = 10_000_000, 1_000_000_000
		}
	}
	chainFile := filepath.Join(dir, "chain.json")
	raw, _ := json.Marshal(chain)
	if err := os.WriteFile(chainFile, raw, 0o644); err != nil {
		cleanup()
		return nil, nil, err
	}
	rpm, tpm := 10_000_000, 1_000_000_000
	if len(chain) > 0 {
		rpm, tpm = chain[0].RequestsPerMinute, chain[0].TokensPerMinute
	}
	env := map[string]string{
		"PRISM_VAR_DIR":        dir,
		"PRISM_DEV_NATS_PORT":  "-1",
		"PRISM_DEV_S3_ADDR":    "127.0.0.1:0",
		"API_ADDR":             "127.0.0.1:0",
		"DATABASE_URL":         o.DatabaseURL,
		"BEDROCKSIM_SPEED":     strconv.FormatFloat(simSpeed, 'f', -1, 64),
		"BEDROCKSIM_RPM":       strconv.Itoa(rpm),
		"BEDROCKSIM_TPM":       strconv.Itoa(tpm),
		"ANALYZER_MODELS_FILE": chainFile,
		"ANALYZER_CONCURRENCY": "64",
		// An answer holds its slot for the seconds the model writes: every
		// chat of the chat scenario gets one, as enough replicas would
		// give it.
		"ANALYZER_CHAT_CONCURRENCY": strconv.Itoa(max(64, o.Chats)),
		// Every request acts as the one dev user, who stands for all the
		// users of a run: the per-user limits and the daily token budget
		// are set too large to matter, but still applied (leases taken,
		// tokens checked and counted), as they are for every user.
		"API_LIMIT_UPLOADS_PER_MINUTE":   "1000000",
		"API_LIMIT_DOCS_IN_FLIGHT":       "1000000",
		"API_LIMIT_SSE_STREAMS":          "100000",
		"ANALYZER_DAILY_TOKENS_PER_USER": "1000000000000",
		"PERSIST_CONCURRENCY":            "4",
		"EXTRACTOR_CONCURRENCY":          "16",
		"LOG_LEVEL":                      "warn",
		// Production S3 is a remote service, not this machine's disk and
		// CPU: the benchmark keeps the local stand-in's objects in memory.
		"PRISM_DEV_S3_MEMORY": "true",
	}
	return config.MapEnv(env), cleanup, nil
}

func startDev(ctx context.Context, env config.Getenv, log zerolog.Logger) (*system.Dev, func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	dev, err := system.StartDev(ctx, env, obs.NewRegistry(), log.Level(zerolog.WarnLevel))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	stopped := false
	return dev, func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		_ = dev.Wait()
		dev.Close()
	}, nil
}

type resources struct{ cpu, rssMB float64 }

// usage is this process's CPU, with its reaped children's (the role
// processes, or with -inprocess the extraction workers), and its peak RSS.
func usage() resources {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ch syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ch)
	sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return resources{
		cpu:   sec(ru.Utime) + sec(ru.Stime) + sec(ch.Utime) + sec(ch.Stime),
		rssMB: float64(ru.Maxrss) / 1024,
	}
}

// roleProcesses are the roles of a benchmark run as separate processes.
type roleProcesses struct {
	apiURL string
	procs  []*system.Process
	usage  []system.Usage
	err    error
	done   bool
}

func startRoleProcesses(ctx context.Context, o Options, part string, dev *system.Dev, env config.Getenv) (*roleProcesses, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	roleEnv := map[string]string{"NATS_URL": dev.NATSURL, "API_AUTH": "dev", "LOG_LEVEL": "warn"}
	for _, k := range []string{"ANALYZER_MODELS_FILE", "ANALYZER_CONCURRENCY", "ANALYZER_CHAT_CONCURRENCY", "PERSIST_CONCURRENCY", "EXTRACTOR_CONCURRENCY",
		"API_LIMIT_UPLOADS_PER_MINUTE", "API_LIMIT_DOCS_IN_FLIGHT", "API_LIMIT_SSE_STREAMS", "ANALYZER_DAILY_TOKENS_PER_USER"} {
		roleEnv[k] = env(k)
	}
	for k, v := range dev.RoleEnv {
		roleEnv[k] = v
	}
	rp := &roleProcesses{}
	for _, role := range system.RoleNames() {
		p, err := system.StartProcess(bin, role, o.roleProfileEnv(roleEnv, part, role))
		if err != nil {
			rp.stop()
			return nil, err
		}
		rp.procs = append(rp.procs, p)
		if role == system.RoleAPI {
			rp.apiURL = "http://" + p.APIAddr
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := p.WaitReady(wctx, httpStatus)
			cancel()
			if err != nil {
				rp.stop()
				return nil, err
			}
		}
	}
	return rp, nil
}

// roleProfileEnv is env plus the profile files of role in part's system,
// if any are asked for.
func (o Options) roleProfileEnv(env map[string]string, part, role string) map[string]string {
	out := maps.Clone(env)
	if o.CPUProfile != "" {
		out[system.EnvCPUProfile] = profilePath(o.CPUProfile, part, role)
	}
	if o.MemProfile != "" {
		out[system.EnvMemProfile] = profilePath(o.MemProfile, part, role)
	}
	return out
}

func (rp *roleProcesses) stop() ([]system.Usage, error) {
	if rp.done {
		return rp.usage, rp.err
	}
	rp.done = true
	for _, p := range rp.procs {
		u, err := p.Stop(30 * time.Second)
		rp.usage = append(rp.usage, u)
		if err != nil && rp.err == nil {
			rp.err = err
		}
	}
	return rp.usage, rp.err
}

func httpStatus(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
