package system_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/platform/testenv"
	"github.com/aiprism/prism/streams"
)

// `prism dev` persists chats: a session's events published to CHAT reach
// the read model through the persist role, and its deletion removes it.
func TestDevPersistsChats(t *testing.T) {
	dev := startDev(t, t.TempDir(), testenv.Postgres(t))
	ctx := context.Background()
	pub := streams.NewPublisher(dev.Infra.JS, "/test")
	emit := func(typ streams.EventType, key string, data any) {
		t.Helper()
		ev, err := streams.NewChatEvent(pub.Source(), streams.ChatMeta{Owner: "dev", Session: "chat1", CorrelationID: "c1"}, typ, key, data)
		if err == nil {
			err = pub.Publish(ctx, ev)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	emit(streams.ChatCreated, "", streams.ChatCreatedData{Title: "First chat", CreatedBy: "dev"})
	emit(streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "What is an indemnity?"})

	s := store.New(dev.Infra.Pool)
	testenv.Eventually(t, 10*time.Second, "the chat in the read model", func() bool {
		c, msgs, _, err := s.ChatSession(ctx, "dev", "chat1")
		return err == nil && c.Title == "First chat" && len(msgs) == 2 &&
			msgs[0].Content == "What is an indemnity?" && msgs[1].QuestionID == "q1"
	})
	emit(streams.ChatDeleted, "", streams.ChatDeletedData{DeletedBy: "dev"})
	testenv.Eventually(t, 10*time.Second, "the deleted chat gone", func() bool {
		_, _, _, err := s.ChatSession(ctx, "dev", "chat1")
		return errors.Is(err, store.ErrDeleted)
	})
}
