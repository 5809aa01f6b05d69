package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aiprism/prism/platform/testenv"
	"github.com/rs/zerolog"
)

// The small scenario at a tiny size through a real system: two polled
// rounds (the second on a warmed system) and one followed by SSE, every
// document completed, and the writes and CPU the servers report counted
// per document.
func TestSmallScenario(t *testing.T) {
	const users, docs = 3, 6
	o := Options{Scenario: ScenarioSmall, InProcess: true, Users: users, Documents: docs, Rounds: 2, RefMessages: 200,
		DatabaseURL: testenv.Postgres(t), Log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}.Defaults()
	env, cleanup, err := benchEnv(o, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res *SmallResult
	var sse SmallRound
	_, _, err = withSystem(ctx, o, partSmall, env, func(s *benchSystem) error {
		var err error
		if res, err = smallScenario(ctx, o, s); err != nil {
			return err
		}
		o.Follow = FollowSSE
		sse, err = smallRound(ctx, o, s, newClient(s.apiURL, users), "sse")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rounds) != 2 || res.Reference.Messages != 200 || res.Floor <= 0 {
		t.Fatalf("%d rounds, reference %+v, floor %.0f", len(res.Rounds), res.Reference, res.Floor)
	}
	for _, r := range append(res.Rounds, sse) {
		if r.Completed != docs || r.Failed != 0 || r.EndToEnd.Count != docs {
			t.Errorf("round %d: %d completed, %d failed (%s), %d timed; want %d", r.Round, r.Completed, r.Failed, r.FirstError, r.EndToEnd.Count, docs)
		}
		w := r.Writes
		// At least the uploaded, extracted and analyzed events of each
		// document, each consumed. (The tests' PostgreSQL runs without
		// fsync: no WAL syncs.)
		if w.Stored["DOCS"] < 3 || w.AckTotal < 3 || w.JetStream != w.StoredTotal+w.AckTotal || w.PGCommits <= 0 {
			t.Errorf("round %d: writes per document %+v", r.Round, w)
		}
		if r.CPUPerDoc["process"] <= 0 || r.LoadAvg == "" {
			t.Errorf("round %d: CPU per document %v, load %q", r.Round, r.CPUPerDoc, r.LoadAvg)
		}
	}
	for _, r := range res.Rounds {
		// Polled: seen no sooner than the first poll.
		if r.Server.Count != docs || r.EndToEnd.P50 < SmallPollEvery.Seconds()*1000 {
			t.Errorf("round %d: server side %+v, end to end %+v: want %d times, from the first poll after %s", r.Round, r.Server, r.EndToEnd, docs, SmallPollEvery)
		}
	}
	var out bytes.Buffer
	(&Report{Scenario: ScenarioSmall, Small: res}).Print(&out)
	for _, want := range []string{"small: round 2", "JetStream per document", "PostgreSQL per document", "reference: raw JetStream", "small: fsync floor"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "pipeline: documents") {
		t.Errorf("the small scenario's table shows the documents scenarios:\n%s", out.String())
	}
}
