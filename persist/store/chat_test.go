package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
)

// chat projects one chat event, with the next stream sequence, as persist
// does from CHAT.
func (f *fixture) chat(owner, session string, typ streams.EventType, key string, data any) {
	f.t.Helper()
	ev, err := streams.NewChatEvent("/test", streams.ChatMeta{Owner: owner, Session: session}, typ, key, data)
	if err != nil {
		f.t.Fatal(err)
	}
	f.at = f.at.Add(time.Second)
	f.seq++
	ev.Time, ev.Seq = f.at, f.seq
	if err := f.p.HandleChat(context.Background(), ev); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) chatSession(owner, session, title string) {
	f.t.Helper()
	f.chat(owner, session, streams.ChatCreated, "", streams.ChatCreatedData{Title: title, CreatedBy: owner})
}

// Sessions list newest first, page by page, each once, though sessions
// are created and written to between pages; deleted sessions, sessions
// not created yet and other owners' sessions are not listed.
func TestChatSessionsPage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := range 7 {
		f.chatSession("alice", fmt.Sprintf("s%d", i), fmt.Sprintf("chat %d", i))
	}
	f.chatSession("bob", "b0", "bob's")
	f.chat("alice", "s3", streams.ChatDeleted, "", streams.ChatDeletedData{DeletedBy: "alice"})
	f.chat("alice", "early", streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "?"})
	f.chat("alice", "s1", streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "why?"})
	// Same creation time: the id breaks the tie, so none is lost between pages.
	if _, err := f.pool.Exec(ctx, "UPDATE chat_sessions SET created_at = '2025-05-01T12:00:04Z' WHERE id IN ('s2', 's4', 's5')"); err != nil {
		t.Fatal(err)
	}

	var order []string
	cursor, pages := "", 0
	for {
		page, next, err := f.s.ChatSessions(ctx, "alice", store.ChatPage{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if pages++; pages > 5 {
			t.Fatalf("still paging after 5 pages: %v", order)
		}
		order = append(order, ids(page)...)
		for _, s := range page {
			if s.ID == "s1" && (s.MessageCount != 2 || s.Title != "chat 1" || !s.UpdatedAt.After(s.CreatedAt)) {
				t.Errorf("s1 listed as %+v; want its 2 messages, title and a later update", s)
			}
		}
		// Between pages, a new session and a new question in a listed one.
		f.chatSession("alice", fmt.Sprintf("new%d", pages), "new")
		f.chat("alice", "s6", streams.ChatAsked, fmt.Sprintf("p%d", pages), streams.ChatAskedData{MessageID: fmt.Sprintf("pq%d", pages), AnswerID: fmt.Sprintf("p%d", pages), Content: "more"})
		if next == "" {
			break
		}
		cursor = next
	}
	want := []string{"s6", "s5", "s4", "s2", "s1", "s0"}
	if !slices.Equal(order, want) || pages != 3 {
		t.Fatalf("pages of 2 listed %v in %d pages; want %v in 3", order, pages, want)
	}

	bobs, next, err := f.s.ChatSessions(ctx, "bob", store.ChatPage{})
	if err != nil || next != "" || !slices.Equal(ids(bobs), []string{"b0"}) {
		t.Fatalf("bob lists %v (next %q, %v); want only b0", ids(bobs), next, err)
	}
	_, chatCursor, err := f.s.ChatSessions(ctx, "alice", store.ChatPage{Limit: 1})
	if err != nil || chatCursor == "" {
		t.Fatalf("session cursor %q (%v)", chatCursor, err)
	}
	if _, _, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Cursor: chatCursor}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("a session cursor pages documents: %v", err)
	}
	f.upload("alice", "d1", "a.txt")
	f.upload("alice", "d2", "b.txt")
	_, docCursor, err := f.s.ListDocuments(ctx, "alice", store.ListQuery{Limit: 1})
	if err != nil || docCursor == "" {
		t.Fatalf("document cursor %q (%v)", docCursor, err)
	}
	for _, c := range []string{"not-a-cursor", docCursor} {
		if _, _, err := f.s.ChatSessions(ctx, "alice", store.ChatPage{Cursor: c}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

// A session is its owner's: another owner, a deleted session and one
// whose created event is not projected yet are not found.
func TestChatSessionIsScopedByOwner(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.chat("alice", "s1", streams.ChatCreated, "", streams.ChatCreatedData{Title: "MSA", DocumentID: "docA", CreatedBy: "alice"})
	f.chat("alice", "s1", streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "why?"})
	f.chat("alice", "s1", streams.ChatAnswered, "a1", streams.ChatAnswerData{AnswerID: "a1", MessageID: "q1", Content: "because", Model: "m1"})
	f.chatSession("alice", "gone", "deleted")
	f.chat("alice", "gone", streams.ChatDeleted, "", streams.ChatDeletedData{DeletedBy: "alice"})
	f.chat("alice", "early", streams.ChatAsked, "a1", streams.ChatAskedData{MessageID: "q1", AnswerID: "a1", Content: "?"})

	s, msgs, seq, err := f.s.ChatSession(ctx, "alice", "s1")
	if err != nil || s.DocumentID != "docA" || s.Title != "MSA" || len(msgs) != 2 || seq != 3 ||
		msgs[0].ID != "q1" || msgs[1].ID != "a1" || msgs[1].Status != streams.MessageComplete || msgs[1].Content != "because" {
		t.Fatalf("alice's s1: %+v %+v seq %d (%v)", s, msgs, seq, err)
	}
	if _, msgs, _, err := f.s.ChatSession(ctx, "bob", "s1"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) || msgs != nil {
		t.Fatalf("bob reads alice's session: %v, %d messages; want ErrNotFound", err, len(msgs))
	}
	if _, _, _, err := f.s.ChatSession(ctx, "alice", "gone"); !errors.Is(err, store.ErrDeleted) {
		t.Fatalf("deleted session: %v, want ErrDeleted", err)
	}
	if _, _, _, err := f.s.ChatSession(ctx, "bob", "gone"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		t.Fatalf("bob, alice's deleted session: %v, want ErrNotFound and nothing more", err)
	}
	if _, _, _, err := f.s.ChatSession(ctx, "alice", "early"); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted) {
		t.Fatalf("session not created yet: %v, want ErrNotFound", err)
	}
	if msgs, err := f.s.ChatMessages(ctx, "bob", "s1"); err != nil || len(msgs) != 0 {
		t.Fatalf("bob reads alice's messages: %d (%v)", len(msgs), err)
	}
}
