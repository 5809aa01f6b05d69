package api

import (
	"sync"
	"time"

	"github.com/aiprism/prism/persist/store"
	"github.com/gofiber/fiber/v2"
)

// actor is who makes the request, for audit entries: the authenticated
// user, who is not the documents' owner when an admin reads another
// user's documents.
func (s *Server) actor(c *fiber.Ctx) store.Actor {
	user := ownerOf(c)
	if p := principalOf(c); p != nil {
		user = p.User.ID
	}
	return store.Actor{User: user, RequestID: requestID(c), Source: Source}
}

// recordAccess writes a read's audit entry. It is best effort: a reader is
// not refused because the audit row could not be written, but the failure
// is logged (and counted as an error log) for the operator. The store keeps
// one entry per document, kind, user and minute; a repeat this replica has
// already written is not sent again.
func (s *Server) recordAccess(c *fiber.Ctx, id, typ string, extra map[string]any) {
	a, at := s.actor(c), time.Now().UTC()
	key := store.AccessEntryID(id, typ, a.User, at)
	if !s.audited.add(key, at) {
		return
	}
	err := s.deps.Documents.RecordAccess(c.UserContext(), ownerOf(c), id, typ, a, at, extra)
	if err != nil {
		s.audited.remove(key) // the next read tries again
		s.deps.Log.Error().Err(err).Str("document_id", id).Str("audit", typ).Str("request_id", requestID(c)).
			Msg("audit entry not recorded")
	}
}

// maxAuditMemo bounds the entries remembered within one minute.
const maxAuditMemo = 100_000

// auditMemo is the set of audit entry ids this replica wrote in the
// current minute (the ids carry the minute, so older ones never recur).
type auditMemo struct {
	mu     sync.Mutex
	minute int64
	ids    map[string]struct{}
}

// add reports whether id is new, remembering it.
func (m *auditMemo) add(id string, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if minute := at.Unix() / 60; minute != m.minute || len(m.ids) >= maxAuditMemo || m.ids == nil {
		m.minute, m.ids = minute, make(map[string]struct{})
	}
	if _, ok := m.ids[id]; ok {
		return false
	}
	m.ids[id] = struct{}{}
	return true
}

func (m *auditMemo) remove(id string) {
	m.mu.Lock()
	delete(m.ids, id)
	m.mu.Unlock()
}
