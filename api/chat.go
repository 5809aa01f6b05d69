package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aiprism/prism/persist/store"
	"github.com/aiprism/prism/streams"
	"github.com/gofiber/fiber/v2"
)

// Chat sessions: the risk-advice assistant. The API publishes what users
// do (chat.created, chat.asked, chat.deleted) to stream CHAT; an analyzer
// answers a question by writing deltas on core NATS and storing the end
// of the answer; persist projects the stored events into the read model.
// Every read here is the read model with the session's newer stream
// events folded on top (the Transcript rule), so a client reads its own
// writes on any replica before persist has applied them.

// Chat limits besides the contract's.
const (
	// maxChatBody bounds a chat request's JSON body: a question of
	// MaxChatQuestion characters, each escaped as \uXXXX at worst.
	maxChatBody = 6*streams.MaxChatQuestion + 1024
	// defaultChatTitle names a free session created without a title.
	defaultChatTitle = "New chat"
)

// classBadContent is a question that is empty or too long (422).
const classBadContent = "bad-content"

// chatSessionView is a session as the API shows it.
type chatSessionView struct {
	ID         string    `json:"id"`
	Title      string    `json:"title"`
	DocumentID string    `json:"document_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// chatSessionDetail is a session with its messages.
type chatSessionDetail struct {
	chatSessionView
	Messages []streams.ChatMessage `json:"messages"`
}

func viewTranscript(tr *streams.Transcript) chatSessionDetail {
	msgs := make([]streams.ChatMessage, len(tr.Messages))
	for i, m := range tr.Messages {
		msgs[i] = shownMessage(m)
	}
	return chatSessionDetail{
		chatSessionView: chatSessionView{ID: tr.Session, Title: tr.Created.Title, DocumentID: tr.Created.DocumentID, CreatedAt: shownTime(tr.CreatedAt)},
		Messages:        msgs,
	}
}

// shownTime is a time as the read model keeps it (PostgreSQL stores
// microseconds), so a message reads the same whether it was folded from
// the stream or projected.
func shownTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func shownMessage(m streams.ChatMessage) streams.ChatMessage {
	m.CreatedAt = shownTime(m.CreatedAt)
	return m
}

// chatNotFound is the answer for a session that is not the caller's (or
// no longer exists): the same as for one that never did.
func chatNotFound(id string) *Problem {
	if id == "" {
		return problem(fiber.StatusNotFound, classNotFound, "no such chat session")
	}
	return problem(fiber.StatusNotFound, classNotFound, "no chat session "+id)
}

// pathID reads a path parameter that names an id; one that cannot exist
// is simply not found.
func pathID(c *fiber.Ctx, name string) (string, error) {
	id := c.Params(name)
	if streams.ValidToken(id) != nil {
		return "", chatNotFound("")
	}
	return id, nil
}

// chatSession reads the owner's session: the read model's, with the stream's
// events after what it has applied folded on top. last is the stream
// sequence of the session's newest event (0: none), what a change decided
// on this state expects (PublishAfter). A session that does not exist for
// owner is not found; a deleted one is returned with Deleted set.
func (s *Server) chatSession(ctx context.Context, owner, id string) (tr *streams.Transcript, last uint64, err error) {
	return s.readSession(ctx, owner, id).finish(ctx)
}

// sessionRead is a read of a session under way: the read model has
// answered (stored), the stream's newest event is being read beside it.
type sessionRead struct {
	s         *Server
	owner, id string
	stored    *streams.Transcript
	storedErr error
	newest    chan lastEvent
}

type lastEvent struct {
	ev  *streams.Event
	err error
}

// readSession reads the session from the read model, and starts reading
// the stream's newest event of it meanwhile: the events in between are
// replayed by finish, after both.
func (s *Server) readSession(ctx context.Context, owner, id string) *sessionRead {
	r := &sessionRead{s: s, owner: owner, id: id, newest: make(chan lastEvent, 1)}
	go func() {
		ev, err := s.chats.Last(ctx, streams.ChatFilter(owner, id))
		r.newest <- lastEvent{ev, err}
	}()
	r.stored, r.storedErr = s.storedSession(ctx, owner, id)
	return r
}

// settled is the read model's session when nothing in it waits for the
// stream: it exists, is not deleted and no answer of it is being written.
// A change decided on it expects the read model's last sequence; if the
// stream has moved since, the change fails (ErrMoved) and is decided
// again on a finished read.
func (r *sessionRead) settled() (*streams.Transcript, uint64, bool) {
	tr := r.stored
	if r.storedErr != nil || !tr.Exists || tr.Deleted || tr.Seq == 0 || tr.Answering() != nil {
		return nil, 0, false
	}
	return tr, tr.Seq, true
}

// finish folds the stream's events after the read model's onto it.
func (r *sessionRead) finish(ctx context.Context) (*streams.Transcript, uint64, error) {
	le := <-r.newest
	tr, err := r.stored, r.storedErr
	if err != nil || tr.Deleted {
		return tr, 0, err
	}
	newest, err := le.ev, le.err
	if err != nil {
		return nil, 0, fmt.Errorf("chat session %s: %w", r.id, err)
	}
	var last uint64
	if newest != nil {
		// The read model may have applied an event stored after the newest
		// one was read: its sequence is then the session's last.
		last = max(newest.Seq, tr.Seq)
		if last > tr.Seq {
			filter := streams.ChatFilter(r.owner, r.id)
			if err := r.s.chats.Replay(ctx, filter, tr.Seq, last, func(ev *streams.Event) (bool, error) {
				return false, tr.Apply(ev)
			}); err != nil {
				return nil, 0, fmt.Errorf("chat session %s: %w", r.id, err)
			}
		}
	}
	if !tr.Exists {
		return nil, 0, chatNotFound(r.id)
	}
	return tr, last, nil
}

// liveSession is chatSession, with a deleted session not found.
func (s *Server) liveSession(ctx context.Context, owner, id string) (*streams.Transcript, uint64, error) {
	tr, last, err := s.chatSession(ctx, owner, id)
	if err == nil && tr.Deleted {
		return nil, 0, chatNotFound(id)
	}
	return tr, last, err
}

// storedSession is what the read model holds of the session, as a
// transcript to fold newer events onto: an empty one when it holds
// nothing yet (the session may be in the stream alone), a deleted one
// when the session was deleted, which nothing in the stream undoes.
func (s *Server) storedSession(ctx context.Context, owner, id string) (*streams.Transcript, error) {
	c, msgs, seq, err := s.deps.Documents.ChatSession(ctx, owner, id)
	switch {
	case err == nil:
		tr := store.ChatTranscript(c, msgs, seq)
		return &tr, nil
	case errors.Is(err, store.ErrDeleted):
		return &streams.Transcript{Owner: owner, Session: id, Exists: true, Deleted: true}, nil
	case errors.Is(err, store.ErrNotFound):
		return &streams.Transcript{Owner: owner, Session: id}, nil
	}
	return nil, fmt.Errorf("chat session %s: %w", id, err)
}

// createChatSession opens a session, free or about one of the caller's
// documents, and answers with it.
func (s *Server) createChatSession(c *fiber.Ctx) error {
	owner := ownerOf(c)
	var in struct {
		Title      string `json:"title"`
		DocumentID string `json:"document_id"`
	}
	if err := decodeOptionalBody(c, &in, maxAccountBody, `{"title", "document_id"}`); err != nil {
		return err
	}
	title := strings.TrimSpace(in.Title)
	if utf8.RuneCountInString(title) > streams.MaxChatTitle || strings.ContainsFunc(title, unicode.IsControl) {
		return badParam("title", fmt.Sprintf("must be at most %d characters, without control characters", streams.MaxChatTitle))
	}
	if in.DocumentID != "" {
		filename, err := s.documentFilename(c.UserContext(), owner, in.DocumentID)
		if err != nil {
			return err
		}
		if title == "" {
			title = truncateRunes(filename, streams.MaxChatTitle)
		}
	}
	if title == "" {
		title = defaultChatTitle
	}
	m := streams.ChatMeta{Owner: owner, Session: streams.NewID(), CorrelationID: requestID(c)}
	ev, err := streams.NewChatEvent(Source, m, streams.ChatCreated, "", streams.ChatCreatedData{Title: title, DocumentID: in.DocumentID, CreatedBy: s.actor(c).User})
	if err != nil {
		return err
	}
	if err := s.pub.Publish(c.UserContext(), ev); err != nil {
		return fmt.Errorf("create chat session: %w", err)
	}
	tr := streams.Transcript{}
	if err := tr.Apply(ev); err != nil {
		return err
	}
	s.chatLog(c, m).Info().Str("document_id", in.DocumentID).Msg("chat session created")
	c.Location("/api/v1/chat/sessions/" + m.Session)
	return c.Status(fiber.StatusCreated).JSON(viewTranscript(&tr))
}

// documentFilename is the filename of one of owner's documents that is
// not deleted: the read model's, or the upload event's when the read
// model has not seen the document yet.
func (s *Server) documentFilename(ctx context.Context, owner, id string) (string, error) {
	if streams.ValidToken(id) != nil {
		return "", notFound(id)
	}
	doc, err := s.deps.Documents.GetDocument(ctx, owner, id)
	switch {
	case err == nil:
		return doc.Filename, nil
	case errors.Is(err, store.ErrDeleted):
		return "", notFound(id)
	case !errors.Is(err, store.ErrNotFound):
		return "", err
	}
	var up streams.UploadedData
	ev, err := s.events.Last(ctx, streams.DocSubject(owner, id, streams.Uploaded))
	if err != nil {
		return "", err
	}
	if ev == nil || ev.Decode(&up) != nil {
		return "", notFound(id)
	}
	return up.Filename, nil
}

func truncateRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// chatSessionSummary is a session in a list.
type chatSessionSummary struct {
	chatSessionView
	UpdatedAt    time.Time `json:"updated_at"`
	MessageCount int       `json:"message_count"`
}

// listChatSessions pages through the owner's sessions, newest first, as
// the read model has them (keyset pages, like the document list).
func (s *Server) listChatSessions(c *fiber.Ctx) error {
	limit, cursor, err := pageParams(c)
	if err != nil {
		return err
	}
	sessions, next, err := s.deps.Documents.ChatSessions(c.UserContext(), ownerOf(c), store.ChatPage{Limit: limit, Cursor: cursor})
	switch {
	case errors.Is(err, store.ErrBadCursor):
		return badParam("cursor", "is not a cursor from this list")
	case err != nil:
		return err
	}
	items := make([]chatSessionSummary, len(sessions))
	for i, cs := range sessions {
		items[i] = chatSessionSummary{
			chatSessionView: chatSessionView{ID: cs.ID, Title: cs.Title, DocumentID: cs.DocumentID, CreatedAt: shownTime(cs.CreatedAt)},
			UpdatedAt:       shownTime(cs.UpdatedAt), MessageCount: cs.MessageCount,
		}
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": next})
}

// getChatSession answers with the session and its messages.
func (s *Server) getChatSession(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	tr, _, err := s.liveSession(c.UserContext(), ownerOf(c), id)
	if err != nil {
		return err
	}
	return c.JSON(viewTranscript(tr))
}

// deleteChatSession deletes a session: it leaves every read at once (the
// stream's chat.deleted is folded on top of the read model), its open
// event streams end, and persist removes it. Deleting again answers 204.
func (s *Server) deleteChatSession(c *fiber.Ctx) error {
	owner := ownerOf(c)
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	tr, _, err := s.chatSession(c.UserContext(), owner, id)
	if err != nil {
		return err
	}
	if !tr.Deleted {
		m := streams.ChatMeta{Owner: owner, Session: id, CorrelationID: requestID(c)}
		ev, err := streams.NewChatEvent(Source, m, streams.ChatDeleted, "", streams.ChatDeletedData{DeletedBy: s.actor(c).User})
		if err != nil {
			return err
		}
		if err := s.pub.Publish(c.UserContext(), ev); err != nil {
			return fmt.Errorf("delete chat session: %w", err)
		}
		s.chatLog(c, m).Info().Msg("chat session deleted")
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// postChatMessage asks a question in the session. The answer streams on
// the session's events; the answer is 202 with the ids of the question
// and of its answer.
func (s *Server) postChatMessage(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Content *string `json:"content"`
	}
	if err := decodeBodyUpTo(c, &in, maxChatBody, `{"content"}`); err != nil {
		return err
	}
	if in.Content == nil {
		return problem(fiber.StatusBadRequest, "bad-body", `the body must be a JSON object {"content"} with the question`)
	}
	content := *in.Content
	if strings.TrimSpace(content) == "" || utf8.RuneCountInString(content) > streams.MaxChatQuestion {
		return problem(fiber.StatusUnprocessableEntity, classBadContent,
			fmt.Sprintf("the question must have 1 to %d characters, not only spaces", streams.MaxChatQuestion))
	}
	return s.ask(c, id, func(*streams.Transcript) (streams.ChatAskedData, error) {
		return streams.ChatAskedData{MessageID: streams.NewID(), Content: content}, nil
	})
}

// regenerateChatAnswer asks an ended answer's question again: a new
// answer replaces it once it starts.
func (s *Server) regenerateChatAnswer(c *fiber.Ctx) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	answer, err := pathID(c, "answer_id")
	if err != nil {
		return err
	}
	return s.ask(c, id, func(tr *streams.Transcript) (streams.ChatAskedData, error) {
		a := findMessage(tr, answer)
		if a == nil || a.Role != streams.RoleAssistant {
			return streams.ChatAskedData{}, problem(fiber.StatusNotFound, classNotFound, "no answer "+answer+" in chat session "+id)
		}
		q := findMessage(tr, a.QuestionID)
		if q == nil {
			return streams.ChatAskedData{}, problem(fiber.StatusNotFound, classNotFound, "the question of answer "+answer+" is gone")
		}
		return streams.ChatAskedData{MessageID: q.ID, Content: q.Content, Regenerates: answer}, nil
	})
}

func findMessage(tr *streams.Transcript, id string) *streams.ChatMessage {
	for i := range tr.Messages {
		if tr.Messages[i].ID == id {
			return &tr.Messages[i]
		}
	}
	return nil
}

// askAttempts bounds the compare-and-set rounds of one question: the
// session moves under a question only when something else happens in it
// at that very moment (an answer ending, another question).
const askAttempts = 5

// ask publishes chat.asked for the question pick chooses from the
// session, if the owner's daily budget is not spent and no answer of the
// session is being written. The question is stored only if the session
// did not move since it was read (PublishAfter), so of two questions
// raced on any replicas one is asked and the other gets 409.
func (s *Server) ask(c *fiber.Ctx, id string, pick func(*streams.Transcript) (streams.ChatAskedData, error)) error {
	ctx, owner := c.UserContext(), ownerOf(c)
	// The budget is read while the session is: the question waits for
	// the slower of the two, not for both in turn.
	spent := make(chan error, 1)
	go func() { spent <- s.deps.Quota.CheckPublished(ctx, owner) }()
	m := streams.ChatMeta{Owner: owner, Session: id, CorrelationID: requestID(c)}
	var recent *recentRead
	for i := range askAttempts {
		rd := s.readSession(ctx, owner, id)
		if recent == nil && rd.storedErr == nil && rd.stored.Exists && rd.stored.Created.DocumentID == "" {
			// A free session (its document never changes): its recent
			// documents are listed while the stream is read.
			recent = s.readRecent(ctx, owner)
		}
		if i == 0 {
			if err := <-spent; err != nil {
				return s.refusal(c, err)
			}
		}
		// A session the read model has settled is decided on at once,
		// the stream's read left to finish on its own: the publication
		// expects the read model's last sequence, and fails if the stream
		// has moved since. Then the next round reads the stream.
		var tr *streams.Transcript
		var last uint64
		settled := false
		if i == 0 {
			tr, last, settled = rd.settled()
		}
		var d streams.ChatAskedData
		var err error
		if settled {
			d, err = pick(tr)
			settled = err == nil // a refusal is decided on the whole session
		}
		if !settled {
			if tr, last, err = rd.finish(ctx); err == nil && tr.Deleted {
				err = chatNotFound(id)
			}
			if err != nil {
				return err
			}
			if d, err = pick(tr); err != nil {
				return err
			}
		}
		if a := tr.Answering(); a != nil {
			ended, err := s.endAbandoned(ctx, m, a)
			if err != nil {
				return err
			}
			if !ended {
				return problem(fiber.StatusConflict, classConflict, "answer "+a.ID+" of this session is still being written; ask again once it has ended")
			}
			continue // the session moved: read it again
		}
		d.AnswerID, d.DocumentID = streams.NewID(), tr.Created.DocumentID
		if d.DocumentID == "" {
			if recent == nil {
				recent = s.readRecent(ctx, owner)
			}
			if d.Recent, err = recent.wait(); err != nil {
				return err
			}
		}
		ev, err := streams.NewChatEvent(Source, m, streams.ChatAsked, d.AnswerID, d)
		if err != nil {
			return err
		}
		err = s.pub.PublishAfter(ctx, ev, streams.ChatFilter(owner, id), last)
		if errors.Is(err, streams.ErrMoved) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ask in chat session %s: %w", id, err)
		}
		s.chatMetrics.questions.Inc()
		s.chatLog(c, m).Info().Str("answer_id", d.AnswerID).Str("regenerates", d.Regenerates).Bool("settled", settled).Msg("chat question asked")
		return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"message_id": d.MessageID, "answer_id": d.AnswerID})
	}
	return problem(fiber.StatusConflict, classConflict, "the session kept changing while the question was asked; ask again")
}

// recentRead is a listing of the owner's recent documents under way.
type recentRead struct {
	done chan struct{}
	refs []streams.ChatDocRef
	err  error
}

func (s *Server) readRecent(ctx context.Context, owner string) *recentRead {
	r := &recentRead{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.refs, r.err = s.recentDocuments(ctx, owner)
	}()
	return r
}

func (r *recentRead) wait() ([]streams.ChatDocRef, error) {
	<-r.done
	return r.refs, r.err
}

// recentDocuments are the owner's analyzed documents, newest first, that
// a question in a free session may name.
func (s *Server) recentDocuments(ctx context.Context, owner string) ([]streams.ChatDocRef, error) {
	docs, _, err := s.deps.Documents.ListDocuments(ctx, owner, store.ListQuery{Status: streams.StatusAnalyzed, Limit: streams.MaxChatRecent})
	if err != nil {
		return nil, fmt.Errorf("recent documents of %s: %w", owner, err)
	}
	refs := make([]streams.ChatDocRef, len(docs))
	for i, d := range docs {
		refs[i] = streams.ChatDocRef{ID: d.ID, Filename: d.Filename}
	}
	return refs, nil
}
