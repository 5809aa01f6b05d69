-- The chat read model, projected from the CHAT stream by persist (see
-- persist/chat.go): sessions, their messages, and the session's events
-- the projection is folded from.
--
-- 0001's chat tables were placeholders no release ever wrote (integer
-- message ids, a session bound to the documents table by a foreign key);
-- they are replaced. Should one hold rows after all, the migration stops
-- rather than drop them: they must be looked at by hand.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM chat_messages) OR EXISTS (SELECT 1 FROM chat_sessions) THEN
        RAISE EXCEPTION 'chat_sessions or chat_messages hold rows; 0006 replaces these tables and will not drop data';
    END IF;
END
$$;
DROP TABLE chat_messages;
DROP TABLE chat_sessions;

-- One row per session an event has named. created_at is NULL until the
-- session's created event is projected: such a row is never read. A
-- deleted session keeps its row as a tombstone (deleted_at, last_seq) so
-- that late or replayed events of it change nothing; its messages, title
-- and events are removed.
CREATE TABLE chat_sessions (
    id            text PRIMARY KEY,
    owner         text NOT NULL CHECK (owner ~ '^[A-Za-z0-9_-]{1,64}$'),
    title         text NOT NULL DEFAULT '',
    -- No foreign key to documents: the DOCS and CHAT projections run
    -- independently (a rebuild may see a session before its document).
    document_id   text,
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz,
    updated_at    timestamptz NOT NULL,   -- time of the newest event applied
    deleted_at    timestamptz,
    -- The CHAT stream sequence of the newest event applied: a reader folds
    -- the session's events after it on top of the rows (read-your-writes).
    last_seq      bigint NOT NULL DEFAULT 0,
    message_count int NOT NULL DEFAULT 0
);
-- GET /chat/sessions: the owner's live sessions, newest first, keyset
-- paged on (created_at, id).
CREATE INDEX chat_sessions_owner_created_idx
    ON chat_sessions (owner, created_at DESC, id DESC) WHERE deleted_at IS NULL AND created_at IS NOT NULL;

-- The session's events as stored in CHAT, keyed by stream sequence: the
-- first of two events in stream order must win (an answer's two ends share
-- an event id), so the id cannot be the key. The projection is the fold
-- (streams.Transcript) of these rows in sequence order.
CREATE TABLE chat_events (
    stream_seq  bigint PRIMARY KEY,
    session_id  text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    owner       text NOT NULL CHECK (owner ~ '^[A-Za-z0-9_-]{1,64}$'),
    event_id    text NOT NULL,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);
CREATE INDEX chat_events_session_idx ON chat_events (session_id, stream_seq);

-- A session's messages as streams.Transcript holds them: position is the
-- message's place in the conversation (a question, then its answer; a
-- regenerated answer takes the place of the one it replaces, whose row is
-- removed). Text columns hold '' for "none", as the Go fields do.
CREATE TABLE chat_messages (
    session_id     text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    id             text NOT NULL,
    owner          text NOT NULL CHECK (owner ~ '^[A-Za-z0-9_-]{1,64}$'),
    position       int NOT NULL,
    role           text NOT NULL CHECK (role IN ('user', 'assistant')),
    status         text NOT NULL CHECK (status IN ('sent', 'answering', 'complete', 'incomplete', 'failed')),
    content        text NOT NULL DEFAULT '',
    question_id    text NOT NULL DEFAULT '',
    model          text NOT NULL DEFAULT '',
    input_tokens   int NOT NULL DEFAULT 0,
    output_tokens  int NOT NULL DEFAULT 0,
    -- A double, not numeric: the cost the event carries, to the last digit
    -- (a small model's turn costs fractions of a micro-dollar).
    cost_usd       double precision NOT NULL DEFAULT 0,
    latency_ms     bigint NOT NULL DEFAULT 0,
    first_token_ms bigint NOT NULL DEFAULT 0,
    citations      jsonb NOT NULL DEFAULT 'null',
    reason         text NOT NULL DEFAULT '',
    reason_class   text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (session_id, id)
);
-- GET /chat/sessions/{id}: one session's messages in order, owner first.
CREATE INDEX chat_messages_owner_session_idx ON chat_messages (owner, session_id, position);
