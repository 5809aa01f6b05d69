package streams

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Event is the envelope of every message on a document subject. It is a
// CloudEvents 1.0 event in structured JSON mode, so other systems can read
// and publish events without our code; owner, correlationid and run are
// CloudEvents extension attributes.
type Event struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"` // the document id
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Owner           string          `json:"owner"`
	CorrelationID   string          `json:"correlationid,omitempty"`
	Run             int             `json:"run"` // analysis generation: 1 for the upload, +1 per re-analysis
	Data            json.RawMessage `json:"data"`

	// Seq is the stream sequence the event was stored at; it is set on
	// receipt, never sent.
	Seq uint64 `json:"-"`
	// Duplicate: Publish found an event with the same id already stored
	// (within the stream's duplicate window), so this one was not; Seq is
	// then the stored one's.
	Duplicate bool `json:"-"`
}

// EventKind returns the short event type (the last subject token).
func (e *Event) EventKind() EventType {
	for _, prefix := range []string{docTypePrefix, chatTypePrefix} {
		if k, ok := strings.CutPrefix(e.Type, prefix); ok && k != "" {
			return EventType(k)
		}
	}
	return ""
}

// IsChat reports whether the event belongs to a chat session (stream CHAT)
// rather than a document (stream DOCS).
func (e *Event) IsChat() bool { return strings.HasPrefix(e.Type, chatTypePrefix) }

// DocumentID is the CloudEvents subject: the document the event is about
// (for a chat event, the session).
func (e *Event) DocumentID() string { return e.Subject }

// NATSSubject is where the event is published.
func (e *Event) NATSSubject() string {
	if e.IsChat() {
		return ChatSubject(e.Owner, e.Subject, e.EventKind())
	}
	return DocSubject(e.Owner, e.Subject, e.EventKind())
}

// StreamName is the stream that stores the event.
func (e *Event) StreamName() string {
	if e.IsChat() {
		return ChatStream
	}
	return DocsStream
}

// Decode unmarshals the payload into v.
func (e *Event) Decode(v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decode %s payload of %s: %w", e.EventKind(), e.ID, err)
	}
	return nil
}

// Meta identifies the document run an event belongs to.
type Meta struct {
	Owner         string
	DocumentID    string
	Run           int
	CorrelationID string
}

// MetaOf returns the Meta of ev, so a stage's output event continues its
// input's document, run and correlation id.
func MetaOf(ev *Event) Meta {
	return Meta{Owner: ev.Owner, DocumentID: ev.Subject, Run: ev.Run, CorrelationID: ev.CorrelationID}
}

// EventID is the deterministic id of an event, also used as its Nats-Msg-Id:
// <document>:<run>:<type>[:<key>]. A stage that runs twice for the same input
// produces the same id, so JetStream drops the duplicate within its window
// and every projector drops it after that.
func EventID(m Meta, t EventType, key string) string {
	id := m.DocumentID + ":" + strconv.Itoa(m.Run) + ":" + string(t)
	if key != "" {
		id += ":" + key
	}
	return id
}

// NewEvent builds an event of type t for m with payload data. key
// distinguishes several events of one type in one run (progress steps).
func NewEvent(source string, m Meta, t EventType, key string, data any) (*Event, error) {
	if err := ValidToken(m.Owner); err != nil {
		return nil, fmt.Errorf("owner: %w", err)
	}
	if err := ValidToken(m.DocumentID); err != nil {
		return nil, fmt.Errorf("document: %w", err)
	}
	return newEvent(source, EventID(m, t, key), t.CloudEventsType(), m, data)
}

// newEvent builds the envelope of an event with a checked meta.
func newEvent(source, id, ceType string, m Meta, data any) (*Event, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encode %s payload: %w", ceType, err)
	}
	return &Event{
		SpecVersion:     "1.0",
		ID:              id,
		Source:          source,
		Type:            ceType,
		Subject:         m.DocumentID,
		Time:            time.Now().UTC(),
		DataContentType: "application/json",
		Owner:           m.Owner,
		CorrelationID:   m.CorrelationID,
		Run:             m.Run,
		Data:            raw,
	}, nil
}

// ParseEvent decodes and checks an envelope received on subject.
func ParseEvent(subject string, raw []byte) (*Event, error) {
	var ev Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("event on %s: %w", subject, err)
	}
	owner, doc, t, err := ParseDocSubject(subject)
	chat := false
	if err != nil {
		var cerr error
		if owner, doc, t, cerr = ParseChatSubject(subject); cerr != nil {
			return nil, err
		}
		chat = true
	}
	switch {
	case ValidToken(owner) != nil || ValidToken(doc) != nil:
		// A subject token may hold characters an id may not; such an owner
		// must not reach object keys, the database or another subject.
		return nil, fmt.Errorf("event on %s: owner or document is not a valid id", subject)
	case ev.SpecVersion != "1.0":
		return nil, fmt.Errorf("event on %s: specversion %q, want 1.0", subject, ev.SpecVersion)
	case ev.ID == "":
		return nil, fmt.Errorf("event on %s: no id", subject)
	case ev.Owner != owner || ev.Subject != doc || ev.EventKind() != t || ev.IsChat() != chat:
		// The subject is what authorization filters on; an envelope that
		// disagrees with it could smuggle one owner's event to another.
		return nil, fmt.Errorf("event on %s: envelope (owner %q, subject %q, type %q) disagrees with the subject", subject, ev.Owner, ev.Subject, ev.Type)
	}
	return &ev, nil
}

// NewID returns a new document id: a ULID, so ids sort by creation time.
func NewID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }
