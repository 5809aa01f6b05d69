package api

import (
	"context"

	"github.com/aiprism/prism/streams"
)

// lastPayload decodes the payload of the document's newest event of type
// t into v; v is left untouched when the log no longer holds one.
func lastPayload(ctx context.Context, log *streams.Log, owner, id string, t streams.EventType, v any) error {
	ev, err := log.Last(ctx, streams.DocSubject(owner, id, t))
	if ev == nil || err != nil {
		return err
	}
	return ev.Decode(v)
}
