package persist_test

import (
	"context"
	"testing"

	"github.com/aiprism/prism/persist"
	"github.com/aiprism/prism/streams"
	"github.com/aiprism/prism/streams/streamstest"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
)

// The projector keeps the promises every stage makes; its effect is a
// committed row per event.
func TestStageContract(t *testing.T) {
	streamstest.Run(t, func(t *testing.T) *streamstest.Stage {
		pool := newDB(t)
		js := docsStreams(t)
		return &streamstest.Stage{
			JS:       js,
			Consumer: streams.PersistConsumer,
			Handler:  persist.New(pool, zerolog.New(zerolog.NewTestWriter(t))).Handle,
			Input: func(t *testing.T, doc string) {
				streamstest.Publish(t, js, doc, streams.Uploaded, streams.UploadedData{Filename: doc + ".pdf", Via: "http"})
			},
			Effects: func(t *testing.T, doc string) int {
				return count(t, pool, "SELECT count(*) FROM document_events WHERE document_id = $1", doc)
			},
			Bad:      func(t *testing.T, doc string) { streamstest.PublishBadPayload(t, js, doc, streams.Uploaded) },
			BadClass: streams.ClassBadEvent,
			Break:    func(t *testing.T) func() { return refuseCommits(t, pool) },
		}
	})
}

// refuseCommits makes every COMMIT that projected an event fail (a
// deferred trigger refuses it, as a lost connection or a full disk would at
// that moment) until allow is called.
func refuseCommits(t *testing.T, pool *pgxpool.Pool) (allow func()) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$`,
		`CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON document_events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit()`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if _, err := pool.Exec(ctx, `DROP TRIGGER refuse_commit ON document_events`); err != nil {
			t.Error(err)
		}
	}
}
