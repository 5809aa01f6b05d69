-- The stream sequence of the event that set a document's status. Within a
-- run, statuses of equal rank (analyzing and queued: a document waits for
-- model capacity, then is analyzed again) follow the newer event, whatever
-- order the projector sees them in.
ALTER TABLE documents ADD COLUMN status_seq bigint NOT NULL DEFAULT 0;
UPDATE documents SET status_seq = last_event_seq;
