package chat

import (
	"strconv"

	"github.com/aiprism/prism/analyzer/router"
	"github.com/aiprism/prism/streams"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
)

// Turn is an earlier exchange of a conversation: a question and the
// answer it got, complete or cut off.
type Turn struct {
	Question   string
	Answer     string
	Incomplete bool
}

// incompleteNote marks, for the model, an earlier answer that was cut off.
const incompleteNote = "\n[This answer was interrupted before it was complete.]"

// tokens is what the turn costs in a request.
func (t Turn) tokens() int {
	n := router.EstimateTokens(t.Question) + router.EstimateTokens(t.Answer) + 2*messageOverhead
	if t.Incomplete {
		n += router.EstimateTokens(incompleteNote)
	}
	return n
}

// messageOverhead is what one message costs besides its text (role and
// framing), in tokens.
const messageOverhead = 8

// Turns are the exchanges of t before the answer answerID, oldest
// first: each answer that ended with text (complete or incomplete) with
// its question. Failed answers (no text), answers still being written and
// the answer being written now are left out.
func Turns(t *streams.Transcript, answerID string) []Turn {
	questions := map[string]string{}
	var out []Turn
	for _, m := range t.Messages {
		if m.ID == answerID {
			break
		}
		switch {
		case m.Role == streams.RoleUser:
			questions[m.ID] = m.Content
		case m.Status == streams.MessageComplete || m.Status == streams.MessageIncomplete:
			q, ok := questions[m.QuestionID]
			if ok && m.Content != "" {
				out = append(out, Turn{Question: q, Answer: m.Content, Incomplete: m.Status == streams.MessageIncomplete})
			}
		}
	}
	return out
}

// HistoryBudget is how many tokens of history a turn may carry:
// configured (ANALYZER_CHAT_HISTORY_TOKENS), but never more than the
// smallest context window of the chain leaves after the output budget
// and the turn itself (system prompt, material and question), so the
// request fits every model it may fall back to.
func HistoryBudget(configured int, chain router.Chain, maxOutput, turnTokens int) int {
	budget := configured
	for _, m := range chain {
		budget = min(budget, m.ContextTokens-min(maxOutput, m.MaxOutputTokens)-turnTokens)
	}
	return max(budget, 0)
}

// Fit keeps the newest turns that fit in budget tokens, walking back from
// the newest and stopping at the first that does not fit: the turns
// kept are contiguous up to now, oldest first. dropped counts the older
// turns left out; a note saying so is reserved in the budget.
func Fit(turns []Turn, budget int) (kept []Turn, dropped int) {
	total := 0
	for _, t := range turns {
		total += t.tokens()
	}
	if total <= budget {
		return turns, 0
	}
	budget -= router.EstimateTokens(droppedNote(len(turns))) + messageOverhead
	used, first := 0, len(turns)
	for first > 0 && used+turns[first-1].tokens() <= budget {
		first--
		used += turns[first].tokens()
	}
	return turns[first:], first
}

// droppedNote is the line that stands for n turns left out.
func droppedNote(n int) string {
	if n == 1 {
		return "[1 earlier turn of this conversation is left out.]"
	}
	return "[" + strconv.Itoa(n) + " earlier turns of this conversation are left out.]"
}

// Messages is the conversation a model is sent: the kept turns, oldest
// first, then the user turn of now. The note about dropped turns opens
// the first user message, so that the roles still alternate as Converse
// requires.
func Messages(kept []Turn, dropped int, user string) []types.Message {
	text := func(s string) []types.ContentBlock {
		return []types.ContentBlock{&types.ContentBlockMemberText{Value: s}}
	}
	var msgs []types.Message
	for _, t := range kept {
		answer := t.Answer
		if t.Incomplete {
			answer += incompleteNote
		}
		msgs = append(msgs,
			types.Message{Role: types.ConversationRoleUser, Content: text(t.Question)},
			types.Message{Role: types.ConversationRoleAssistant, Content: text(answer)})
	}
	msgs = append(msgs, types.Message{Role: types.ConversationRoleUser, Content: text(user)})
	if dropped > 0 {
		first := msgs[0].Content[0].(*types.ContentBlockMemberText)
		first.Value = droppedNote(dropped) + "\n\n" + first.Value
	}
	return msgs
}
