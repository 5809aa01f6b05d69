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
			Break:    func(t *testing.T) func() { return refuseCommits(t, pool, "document_events") },
		}
	})
}

// The chat projector keeps the same promises on CHAT; its effect is the
// event stored for its session's fold.
func TestChatStageContract(t *testing.T) {
	streamstest.Run(t, func(t *testing.T) *streamstest.Stage {
		pool := newDB(t)
		js := docsStreams(t)
		publish := func(t *testing.T, session string, typ streams.EventType, data any) {
			ev, err := streams.NewChatEvent("/streamstest", streams.ChatMeta{Owner: streamstest.Owner, Session: session}, typ, "", data)
			if err == nil {
				err = streams.NewPublisher(js, "/streamstest").Publish(context.Background(), ev)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return &streamstest.Stage{
			JS:       js,
			Consumer: streams.PersistChatConsumer,
			Handler:  persist.New(pool, zerolog.New(zerolog.NewTestWriter(t))).HandleChat,
			Input: func(t *testing.T, session string) {
				publish(t, session, streams.ChatCreated, streams.ChatCreatedData{Title: "t", CreatedBy: streamstest.Owner})
			},
			Effects: func(t *testing.T, session string) int {
				return count(t, pool, "SELECT count(*) FROM chat_events WHERE session_id = $1", session)
			},
			Bad: func(t *testing.T, session string) {
				publish(t, session, streams.ChatCreated, "not a payload of created")
			},
			BadClass: streams.ClassBadEvent,
			Break:    func(t *testing.T) func() { return refuseCommits(t, pool, "chat_events") },
		}
	})
}

// refuseCommits makes every COMMIT that wrote to table fail (a deferred
// trigger refuses it, as a lost connection or a full disk would at that
// moment) until allow is called.
func refuseCommits(t *testing.T, pool *pgxpool.Pool, table string) (allow func()) {
	t.Helper()
	ctx := context.Background()
	for _, sql := range []string{
		`CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'commit refused by the test'; END $$`,
		`CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON ` + table + ` DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit()`,
	} {
		if _, err := pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if _, err := pool.Exec(ctx, `DROP TRIGGER refuse_commit ON `+table); err != nil {
			t.Error(err)
		}
	}
}
