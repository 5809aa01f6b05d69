package chat_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/aiprism/prism/analyzer/chat"
	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// transcript folds a session of questions q0..qn-1 whose answers ended
// as ends says ("complete", "incomplete", "failed"; "" = still being
// written), through the same events and fold the answerer reads.
func transcript(t *testing.T, ends ...string) *streams.Transcript {
	t.Helper()
	m := streams.ChatMeta{Owner: "alice", Session: "s1"}
	var tr streams.Transcript
	apply := func(typ streams.EventType, key string, data any) {
		ev, err := streams.NewChatEvent("/test", m, typ, key, data)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	apply(streams.ChatCreated, "", streams.ChatCreatedData{Title: "t"})
	for i, end := range ends {
		n := strconv.Itoa(i)
		apply(streams.ChatAsked, "a"+n, streams.ChatAskedData{MessageID: "q" + n, AnswerID: "a" + n, Content: "question " + n + strings.Repeat(" padding", 40)})
		switch end {
		case "complete":
			apply(streams.ChatAnswered, "a"+n, streams.ChatAnswerData{AnswerID: "a" + n, MessageID: "q" + n, Content: "answer " + n + strings.Repeat(" padding", 40)})
		case "incomplete":
			apply(streams.ChatFailed, "a"+n, streams.ChatAnswerData{AnswerID: "a" + n, MessageID: "q" + n, Content: "partial " + n, Incomplete: true, ReasonClass: streams.ClassAnswerInterrupted})
		case "failed":
			apply(streams.ChatFailed, "a"+n, streams.ChatAnswerData{AnswerID: "a" + n, MessageID: "q" + n, ReasonClass: streams.ClassModelsBusy})
		}
	}
	return &tr
}

func texts(msgs []types.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Role)+": "+m.Content[0].(*types.ContentBlockMemberText).Value)
	}
	return out
}

// The history rule: earlier turns that ended with text, newest first
// while they fit the budget; older ones are dropped and one line says how
// many; failed answers are left out with their questions; an incomplete
// answer is kept and marked; the roles alternate from a user message.
func TestHistoryDropsOldestTurnsFirstAndLeavesOutFailedOnes(t *testing.T) {
	tr := transcript(t, "complete", "failed", "complete", "incomplete", "complete", "")
	turns := chat.Turns(tr, "a5")
	if len(turns) != 4 || !strings.HasPrefix(turns[0].Question, "question 0") || !strings.HasPrefix(turns[1].Question, "question 2") ||
		!turns[2].Incomplete || turns[2].Answer != "partial 3" {
		t.Fatalf("turns %+v: want q0, q2, q3 (incomplete), q4; q1 failed", turns)
	}

	all, dropped := chat.Fit(turns, 10_000)
	if len(all) != 4 || dropped != 0 {
		t.Fatalf("a large budget keeps %d, drops %d", len(all), dropped)
	}
	// Room for the two newest turns (about 180 and 120 tokens) and the note,
	// not for a third.
	kept, dropped := chat.Fit(turns, 330)
	if len(kept) != 2 || dropped != 2 || kept[0].Answer != "partial 3" || !strings.HasPrefix(kept[1].Question, "question 4") {
		t.Fatalf("kept %+v, dropped %d: want the newest two (q3, q4), two dropped", kept, dropped)
	}
	got := texts(chat.Messages(kept, dropped, "question 5"))
	if len(got) != 5 || !strings.HasPrefix(got[0], "user: [2 earlier turns of this conversation are left out.]\n\nquestion 3") ||
		!strings.HasPrefix(got[1], "assistant: partial 3\n[This answer was interrupted") ||
		!strings.HasPrefix(got[2], "user: question 4") || got[4] != "user: question 5" {
		t.Fatalf("messages:\n%s", strings.Join(got, "\n---\n"))
	}
	for _, m := range got {
		if strings.Contains(m, "question 1") {
			t.Fatalf("the question of a failed answer was sent: %q", m)
		}
	}

	none, dropped := chat.Fit(turns, 0)
	got = texts(chat.Messages(none, dropped, "question 5"))
	if len(none) != 0 || dropped != 4 || len(got) != 1 || got[0] != "user: [4 earlier turns of this conversation are left out.]\n\nquestion 5" {
		t.Fatalf("no budget: kept %d, dropped %d, messages %q", len(none), dropped, got)
	}

	// A regenerated answer sees only the turns before it.
	if turns := chat.Turns(tr, "a2"); len(turns) != 1 || !strings.HasPrefix(turns[0].Question, "question 0") {
		t.Fatalf("turns before a2: %+v", turns)
	}
}

// The history budget is the configured one, or less when the smallest
// context window of the chain leaves less after the output and the turn.
func TestHistoryBudgetFitsTheSmallestWindow(t *testing.T) {
	chain := router.Chain{{ID: "big", ContextTokens: 200_000, MaxOutputTokens: 8192}, {ID: "small", ContextTokens: 12_000, MaxOutputTokens: 4096}}
	if b := chat.HistoryBudget(8000, chain, 1024, 1000); b != 8000 {
		t.Fatalf("budget %d, want the configured 8000", b)
	}
	if b := chat.HistoryBudget(8000, chain, 1024, 5000); b != 12_000-1024-5000 {
		t.Fatalf("budget %d, want what the small window leaves", b)
	}
	if b := chat.HistoryBudget(8000, chain, 1024, 20_000); b != 0 {
		t.Fatalf("budget %d for a turn larger than a window, want 0", b)
	}
}
