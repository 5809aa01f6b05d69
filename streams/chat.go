package streams

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// # Chat sessions
//
// The risk-advice assistant travels the same road as documents, but
// interactively:
//
//	prism.chat.<owner>.<session>.created    a session was opened (bound to a document or free)
//	prism.chat.<owner>.<session>.asked      a question to answer (the API publishes it)
//	prism.chat.<owner>.<session>.answered   an answer ended complete (an analyzer publishes it)
//	prism.chat.<owner>.<session>.failed     an answer ended without completing, with any partial text
//	prism.chat.<owner>.<session>.deleted    the session was deleted
//
// These are stored in stream CHAT: persist projects them, a client resumes
// from them, an analyzer rebuilds the conversation from them. The answer
// itself is written live on the core NATS subject ChatLiveSubject (deltas
// and heartbeats, never stored); the API replica holding the client's SSE
// stream relays them. A client that missed deltas gets the text so far from
// ChatSyncSubject, answered by the replica writing the answer, or the whole
// message in the stored event that ends it.
//
// An answer ends exactly once: answered and failed events of one answer
// share one event id (ChatEndID), so whichever the stream stores first is
// the end, and a second (an API's watchdog giving up on a silent analyzer
// that then finishes after all) is dropped as a duplicate.

// Chat subject roots and stream.
const (
	ChatRoot   = "prism.chat"
	LiveRoot   = "prism.live"
	ChatStream = "CHAT"
)

// Chat session events.
const (
	ChatCreated  EventType = "created"
	ChatAsked    EventType = "asked"
	ChatAnswered EventType = "answered"
	ChatFailed   EventType = "failed"
	ChatDeleted  EventType = "deleted"
)

// StageChat is the answering step, in failures and logs.
const StageChat Stage = "chat"

// ChatCloudEventsType is the CloudEvents type of a chat event.
func ChatCloudEventsType(t EventType) string { return chatTypePrefix + string(t) }

// ChatSubject is the subject of one event of one chat session.
func ChatSubject(owner, session string, t EventType) string {
	return ChatRoot + "." + owner + "." + session + "." + string(t)
}

// ChatFilter matches every event of one session.
func ChatFilter(owner, session string) string { return ChatRoot + "." + owner + "." + session + ".>" }

// ChatOwnerFilter matches every event of every session of one owner.
func ChatOwnerFilter(owner string) string { return ChatRoot + "." + owner + ".>" }

// ChatTypeFilter matches one event type of every session.
func ChatTypeFilter(t EventType) string { return ChatRoot + ".*.*." + string(t) }

// ParseChatSubject splits a chat subject into its parts.
func ParseChatSubject(subject string) (owner, session string, t EventType, err error) {
	rest, ok := strings.CutPrefix(subject, ChatRoot+".")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 {
		return "", "", "", fmt.Errorf("subject %q: not %s.<owner>.<session>.<event>", subject, ChatRoot)
	}
	return parts[0], parts[1], EventType(parts[2]), nil
}

// ChatLiveSubject carries the live messages (ChatLive) of the answers
// being written in one session: core NATS, never stored.
func ChatLiveSubject(owner, session string) string {
	return LiveRoot + ".chat." + owner + "." + session
}

// ChatSyncSubject is where the replica writing an answer replies to a
// request (empty body) with the answer so far, as one ChatLive delta from
// offset 0. No responder: no replica is writing it.
func ChatSyncSubject(owner, session, answer string) string {
	return LiveRoot + ".chatsync." + owner + "." + session + "." + answer
}

// StreamOf is the stream that stores the events a subject filter matches.
func StreamOf(filter string) string {
	if strings.HasPrefix(filter, ChatRoot+".") {
		return ChatStream
	}
	return DocsStream
}

// ChatMeta identifies the session a chat event belongs to.
type ChatMeta struct {
	Owner         string
	Session       string
	CorrelationID string
}

// ChatEventID is the deterministic id (and Nats-Msg-Id) of a chat event:
// <session>:<type>[:<key>], except that the two ends of an answer share
// ChatEndID. key is the answer id of asked, answered and failed events.
func ChatEventID(session string, t EventType, key string) string {
	if t == ChatAnswered || t == ChatFailed {
		return ChatEndID(session, key)
	}
	id := session + ":" + string(t)
	if key != "" {
		id += ":" + key
	}
	return id
}

// ChatEndID is the id of the event that ends an answer, whichever it is.
func ChatEndID(session, answer string) string { return session + ":end:" + answer }

// NewChatEvent builds a chat event of type t for m with payload data.
func NewChatEvent(source string, m ChatMeta, t EventType, key string, data any) (*Event, error) {
	if err := ValidToken(m.Owner); err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	if err := ValidToken(m.Session); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	return newEvent(source, ChatEventID(m.Session, t, key), ChatCloudEventsType(t),
		Meta{Owner: m.Owner, DocumentID: m.Session, CorrelationID: m.CorrelationID}, data)
}

// ChatMetaOf returns the session of a chat event.
func ChatMetaOf(ev *Event) ChatMeta {
	return ChatMeta{Owner: ev.Owner, Session: ev.Subject, CorrelationID: ev.CorrelationID}
}

// Limits of what a chat carries.
const (
	MaxChatTitle    = 200
	MaxChatQuestion = 8000 // characters of one question
)

// ChatCreatedData is the payload of chat.created.
type ChatCreatedData struct {
	Title      string `json:"title"`
	DocumentID string `json:"document_id,omitempty"` // the document the session is about; empty: a free session
	CreatedBy  string `json:"created_by"`
}

// ChatAskedData is the payload of chat.asked: a question and the id its
// answer will have. Regenerating an answer asks the same question again
// (same message id) with a new answer id.
type ChatAskedData struct {
	MessageID   string `json:"message_id"` // the question
	AnswerID    string `json:"answer_id"`
	Content     string `json:"content"`
	DocumentID  string `json:"document_id,omitempty"` // the session's document, so the answerer need not look it up
	Regenerates string `json:"regenerates,omitempty"` // the answer id this one replaces
	// Recent are the owner's most recently analyzed documents, newest
	// first (at most MaxChatRecent), for a free session: the answerer
	// finds those the question names and reads their assessments. The API
	// lists them from the read model, which the answerer cannot reach.
	Recent []ChatDocRef `json:"recent,omitempty"`
}

// ChatDocRef names one of the owner's documents.
type ChatDocRef struct {
	ID       string `json:"id"`
	Filename string `json:"filename"`
}

// MaxChatRecent bounds ChatAskedData.Recent.
const MaxChatRecent = 20

// Citation is a passage of the document an answer relies on. Lines are
// 1-based lines of the extracted text (GET /documents/{id}/text), so a
// frontend can show and highlight the passage.
type Citation struct {
	Ref       int    `json:"ref"` // the [n] the answer writes
	Page      int    `json:"page,omitempty"`
	Sheet     string `json:"sheet,omitempty"`
	StartLine int    `json:"start_line"`
	EndLine   int    `json:"end_line"`
	Quote     string `json:"quote"` // the passage (bounded)
}

// ChatAnswerData is the payload of chat.answered and chat.failed: how an
// answer ended. A failed answer keeps the text written before it broke
// (Content, Incomplete); with no text it carries only the reason.
type ChatAnswerData struct {
	AnswerID     string     `json:"answer_id"`
	MessageID    string     `json:"message_id"` // the question
	Content      string     `json:"content"`
	Incomplete   bool       `json:"incomplete"`
	Model        string     `json:"model,omitempty"`
	InputTokens  int        `json:"input_tokens"`
	OutputTokens int        `json:"output_tokens"`
	CostUSD      float64    `json:"cost_usd"`
	LatencyMS    int64      `json:"latency_ms"`               // from the question's publication to the end
	FirstTokenMS int64      `json:"first_token_ms,omitempty"` // from the question's publication to the first delta
	Citations    []Citation `json:"citations"`
	Attempts     []Attempt  `json:"attempts,omitempty"`
	Reason       string     `json:"reason,omitempty"`       // failed: for people
	ReasonClass  string     `json:"reason_class,omitempty"` // failed: for programs (ClassReason)
}

// ChatDeletedData is the payload of chat.deleted.
type ChatDeletedData struct {
	DeletedBy string `json:"deleted_by"`
}

// Kinds of live messages.
const (
	LiveStarted   = "started"   // a replica took the question (Model: the first it tries)
	LiveDelta     = "delta"     // text of the answer at Offset
	LiveHeartbeat = "heartbeat" // the replica is still at work (waiting for capacity or the first token)
)

// ChatLive is a message on ChatLiveSubject. Offsets are bytes of the
// answer's text, so a relay that saw text up to n skips what it has and
// notices what it missed.
type ChatLive struct {
	Kind     string `json:"kind"`
	AnswerID string `json:"answer_id"`
	Offset   int    `json:"offset,omitempty"`
	Text     string `json:"text,omitempty"`
	Model    string `json:"model,omitempty"`
}

// ChatConfig is the stream of chat session events.
func ChatConfig(t Topology) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:         ChatStream,
		Description:  "chat session events: " + ChatRoot + ".<owner>.<session>.<event>",
		Subjects:     []string{ChatRoot + ".>"},
		Retention:    jetstream.LimitsPolicy,
		Storage:      jetstream.FileStorage,
		Replicas:     t.Replicas,
		MaxAge:       t.MaxAge,
		MaxBytes:     t.MaxBytes,
		MaxMsgSize:   1 << 20,
		Discard:      jetstream.DiscardOld,
		Duplicates:   t.Duplicates,
		AllowDirect:  true,
		MaxConsumers: t.MaxConsumers,
	}
}

// Chat consumers. A question is worth answering for minutes, not hours: an
// older one fails with the reason instead of surprising the user later.
var (
	ChatConsumer        = Consumer{Name: "chat", Stream: ChatStream, Filters: []EventType{ChatAsked}, AckWait: 30 * time.Second, MaxDeliver: 3, MaxAge: 10 * time.Minute, MaxAckPending: 1000, Stage: StageChat}
	PersistChatConsumer = Consumer{Name: "persist-chat", Stream: ChatStream, AckWait: 30 * time.Second, MaxDeliver: 20, MaxAckPending: 10000, Stage: StagePersist}
)

// Roles and statuses of chat messages.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"

	MessageSent       = "sent"       // a question
	MessageAnswering  = "answering"  // an answer being written
	MessageComplete   = "complete"   // an answer that ended well
	MessageIncomplete = "incomplete" // an answer cut off after some text; kept, can be regenerated
	MessageFailed     = "failed"     // an answer that ended with no text; can be regenerated
)

// ChatMessage is one message of a session, as the API shows it and
// persist stores it.
type ChatMessage struct {
	ID           string     `json:"id"`
	Role         string     `json:"role"`
	Status       string     `json:"status"`
	Content      string     `json:"content"`
	CreatedAt    time.Time  `json:"created_at"`
	QuestionID   string     `json:"question_id,omitempty"` // an answer's question
	Model        string     `json:"model,omitempty"`
	InputTokens  int        `json:"input_tokens,omitempty"`
	OutputTokens int        `json:"output_tokens,omitempty"`
	CostUSD      float64    `json:"cost_usd,omitempty"`
	LatencyMS    int64      `json:"latency_ms,omitempty"`
	FirstTokenMS int64      `json:"first_token_ms,omitempty"`
	Citations    []Citation `json:"citations,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	ReasonClass  string     `json:"reason_class,omitempty"`
}

// Transcript is a session folded from its events in stream order: the one
// rule by which the analyzer rebuilds a conversation and the API shows
// what the read model has not projected yet (persist applies the same
// rule in SQL). A regenerated answer replaces the one it regenerates.
type Transcript struct {
	Owner, Session string
	Created        ChatCreatedData
	CreatedAt      time.Time
	Exists         bool // a created event was applied
	Deleted        bool
	Messages       []ChatMessage
	Seq            uint64 // the last event applied
}

// Apply folds one event of the session into t. Events already applied
// (Seq at or below t.Seq, when known) and the second end of an answer
// change nothing.
func (t *Transcript) Apply(ev *Event) error {
	if ev.Seq != 0 && ev.Seq <= t.Seq {
		return nil
	}
	switch ev.EventKind() {
	case ChatCreated:
		if err := ev.Decode(&t.Created); err != nil {
			return err
		}
		t.Owner, t.Session, t.CreatedAt, t.Exists = ev.Owner, ev.Subject, ev.Time, true
	case ChatDeleted:
		t.Deleted = true
	case ChatAsked:
		var d ChatAskedData
		if err := ev.Decode(&d); err != nil {
			return err
		}
		t.ask(d, ev.Time)
	case ChatAnswered, ChatFailed:
		var d ChatAnswerData
		if err := ev.Decode(&d); err != nil {
			return err
		}
		t.end(ev.EventKind(), d)
	}
	if ev.Seq > t.Seq {
		t.Seq = ev.Seq
	}
	return nil
}

func (t *Transcript) ask(d ChatAskedData, at time.Time) {
	if t.find(d.AnswerID) >= 0 {
		return
	}
	answer := ChatMessage{ID: d.AnswerID, Role: RoleAssistant, Status: MessageAnswering, CreatedAt: at, QuestionID: d.MessageID}
	if i := t.find(d.Regenerates); d.Regenerates != "" && i >= 0 {
		t.Messages[i] = answer
		return
	}
	if t.find(d.MessageID) < 0 {
		t.Messages = append(t.Messages, ChatMessage{ID: d.MessageID, Role: RoleUser, Status: MessageSent, Content: d.Content, CreatedAt: at})
	}
	t.Messages = append(t.Messages, answer)
}

func (t *Transcript) end(kind EventType, d ChatAnswerData) {
	i := t.find(d.AnswerID)
	if i < 0 || t.Messages[i].Status != MessageAnswering {
		return // superseded, or ended already
	}
	m := &t.Messages[i]
	m.Content, m.Model, m.Citations = d.Content, d.Model, d.Citations
	m.InputTokens, m.OutputTokens, m.CostUSD = d.InputTokens, d.OutputTokens, d.CostUSD
	m.LatencyMS, m.FirstTokenMS, m.Reason, m.ReasonClass = d.LatencyMS, d.FirstTokenMS, d.Reason, d.ReasonClass
	switch {
	case kind == ChatAnswered && !d.Incomplete:
		m.Status = MessageComplete
	case d.Content != "":
		m.Status = MessageIncomplete
	default:
		m.Status = MessageFailed
	}
}

func (t *Transcript) find(id string) int {
	for i := range t.Messages {
		if t.Messages[i].ID == id {
			return i
		}
	}
	return -1
}

// Answering is the answer still being written, or nil.
func (t *Transcript) Answering() *ChatMessage {
	for i := range t.Messages {
		if t.Messages[i].Status == MessageAnswering {
			return &t.Messages[i]
		}
	}
	return nil
}

// ChatClassReason is what users are told about an answer that ended
// without completing, by failure class: a sentence of ours, worded for a
// chat (ClassReason's are worded for documents).
func ChatClassReason(class string) string {
	switch class {
	case ClassAnswerInterrupted:
		return "The answer stopped before it was complete; what was written is kept, and it can be regenerated."
	case ClassModelsBusy:
		return "Every model is busy right now; regenerate the answer in a moment."
	case ClassBudgetSpent:
		return "The daily model budget of this account is spent; ask again after it renews at midnight UTC."
	case ClassTooLargeForModels:
		return "The conversation and its documents are too large for every model available."
	case ClassModelRejected:
		return "The model refused to answer this question."
	case ClassGaveUp:
		return "No answer could be written after repeated failures on our side; regenerate it to try again."
	}
	return "No answer could be written; regenerate it to try again."
}
