// Package streams is the contract every role shares: the subject scheme, the
// event envelope and payloads, the JetStream stream and consumer definitions,
// and the consumer runner that gives every stage the same delivery rules.
//
// # Subjects
//
//	prism.doc.<owner>.<document>.<event>   document lifecycle events (stream DOCS)
//	prism.intake.<owner>                   documents published straight to NATS by other systems (stream INTAKE)
//	prism.chat.<owner>.<session>.<event>   chat session events (stream CHAT), see chat.go
//	prism.live.chat.<owner>.<session>      live answer deltas (core NATS, never stored)
//
// The owner is part of every document subject so that authorization is a
// subject filter: a user's SSE stream subscribes to prism.doc.<owner>.<document>.>
// and can never see another owner's events, and a NATS account or permission
// for a tenant is prism.doc.<tenant>.>. Owner and document ids are restricted
// to [A-Za-z0-9_-] so they are always exactly one subject token.
package streams

import (
	"fmt"
	"strings"
)

// Subject roots.
const (
	DocRoot    = "prism.doc"
	IntakeRoot = "prism.intake"
)

// EventType is the last subject token and the suffix of the CloudEvents type.
type EventType string

// Document lifecycle events.
const (
	Uploaded  EventType = "uploaded"
	Extracted EventType = "extracted"
	Analyzed  EventType = "analyzed"
	Failed    EventType = "failed"
	Progress  EventType = "progress"
)

// Terminal reports whether t ends a document's run.
func (t EventType) Terminal() bool { return t == Analyzed || t == Failed }

// CloudEvents type prefixes of the two event families.
const (
	docTypePrefix  = "com.aiprism.document."
	chatTypePrefix = "com.aiprism.chat."
)

// CloudEventsType is the value of the CloudEvents "type" attribute of a
// document event.
func (t EventType) CloudEventsType() string { return docTypePrefix + string(t) }

// Stage names the pipeline step an event or failure belongs to.
type Stage string

// Stages.
const (
	StageIngest  Stage = "ingest"
	StageExtract Stage = "extract"
	StageAnalyze Stage = "analyze"
	StagePersist Stage = "persist"
	StageNotify  Stage = "notify"
)

// MaxTokenLen bounds owner and document ids.
const MaxTokenLen = 64

// ValidToken reports whether s can be an owner or document id: one subject
// token of [A-Za-z0-9_-], at most MaxTokenLen long.
func ValidToken(s string) error {
	if s == "" || len(s) > MaxTokenLen {
		return fmt.Errorf("id %q: must be 1 to %d characters", s, MaxTokenLen)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("id %q: only letters, digits, '-' and '_' are allowed", s)
		}
	}
	return nil
}

// DocSubject is the subject of one event of one document.
func DocSubject(owner, document string, t EventType) string {
	return DocRoot + "." + owner + "." + document + "." + string(t)
}

// DocumentFilter matches every event of one document.
func DocumentFilter(owner, document string) string {
	return DocRoot + "." + owner + "." + document + ".>"
}

// OwnerFilter matches every event of every document of one owner.
func OwnerFilter(owner string) string { return DocRoot + "." + owner + ".>" }

// TypeFilter matches one event type of every document.
func TypeFilter(t EventType) string { return DocRoot + ".*.*." + string(t) }

// ParseDocSubject splits a document subject into its parts.
func ParseDocSubject(subject string) (owner, document string, t EventType, err error) {
	rest, ok := strings.CutPrefix(subject, DocRoot+".")
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 {
		return "", "", "", fmt.Errorf("subject %q: not %s.<owner>.<document>.<event>", subject, DocRoot)
	}
	return parts[0], parts[1], EventType(parts[2]), nil
}
