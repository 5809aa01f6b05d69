package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aiprism/prism/cmd/prism/internal/bench"
	"github.com/aiprism/prism/platform/config"
)

// runBench is `prism bench`: the scenarios of internal/bench, a table on
// stdout, the figures as JSON, and optional CPU and heap profiles.
func runBench(ctx context.Context, args []string, env config.Getenv, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.StringVar(&o.Scenario, "scenario", bench.ScenarioAll, "scenarios to run: "+strings.Join(bench.Scenarios(), ", ")+" (all: every one but capacity; chat: the chat scenario and the simulator alone; small: small text documents polled to completion, and raw JetStream)")
	fs.BoolVar(&o.Quick, "quick", false, "small sizes (make bench)")
	fs.StringVar(&o.CorpusDir, "corpus", "../shared/corpus", "documents to upload (text, HTML, PDF, DOCX and XLSX files under 256 KiB)")
	fs.IntVar(&o.Documents, "docs", 0, "documents in the pipeline scenario")
	fs.IntVar(&o.Users, "users", 0, "simulated users, each following its document (default 50; 40 with -scenario small)")
	fs.IntVar(&o.APIClients, "clients", 0, "concurrent API clients")
	var rate float64
	fs.Float64Var(&rate, "rate", 0, "documents/s offered: of the paced pipeline scenario (default 10); with -scenario small, uploads at this rate whatever the latency (default: a closed loop, each user one document at a time)")
	fs.IntVar(&o.DocBytes, "doc-bytes", 0, "with -scenario small: bytes of text per document (default 1024)")
	fs.StringVar(&o.Follow, "follow", bench.FollowPoll, "with -scenario small: how clients see a document finished: poll (GET every 0.5 s) or sse")
	fs.IntVar(&o.Rounds, "rounds", 1, "with -scenario small: rounds of -docs documents on one fresh system (the first on a fresh instance)")
	fs.DurationVar(&o.APIDuration, "api-time", 0, "duration of the API scenario")
	fs.Float64Var(&o.APIRate, "api-rate", 0, "requests/s in all of the paced API scenario (default 500)")
	fs.IntVar(&o.SSEDocs, "sse-docs", 0, "documents followed in the SSE scenario")
	fs.IntVar(&o.SSEPerDoc, "sse-per-doc", 0, "concurrent streams per document")
	fs.IntVar(&o.Chats, "chats", 0, "concurrent chats in the chat scenario (default 50)")
	fs.IntVar(&o.ChatQuestions, "chat-questions", 0, "questions each chat asks, one after the other (default 10, 3 with -quick)")
	fs.Float64Var(&o.ChatSpeed, "chat-speed", 1, "the Bedrock simulator's speed in the chat scenario: 1 is realistic time to first token and token rate, 0.1 ten times faster")
	fs.DurationVar(&o.ChatRamp, "chat-ramp", 0, "spread the chats' first questions over this (default 3s x chat-speed, about one question's time; -1s: all at once)")
	fs.BoolVar(&o.InProcess, "inprocess", false, "run every role inside the bench process instead of one process per role")
	fs.BoolVar(&o.Capacity, "capacity", false, "also run the capacity scenario (realistic model latency and quotas, about 2 minutes)")
	jsonOut := fs.String("json", "", "write the figures here (default bench-results/bench-<time>.json)")
	fs.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the run here, and each role process's to <file>.<role>")
	fs.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile here before the system stops, and each role process's to <file>.<role>")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Scenario == bench.ScenarioSmall {
		o.Offered = rate
	} else {
		o.PacedRate = rate
	}
	if o.ChatSpeed <= 0 {
		return fmt.Errorf("-chat-speed %g: want a speed above 0 (1 is realistic)", o.ChatSpeed)
	}
	o.DatabaseURL = env("DATABASE_URL")
	log, err := logger(env, stderr, "bench")
	if err != nil {
		return err
	}
	o.Log = log
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	path := *jsonOut
	if path == "" {
		path = filepath.Join("bench-results", "bench-"+time.Now().UTC().Format("20060102-150405")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("bench figures: %w", err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nfigures written to %s\n", path)
	return nil
}
