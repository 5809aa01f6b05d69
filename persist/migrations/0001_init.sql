-- The whole system's schema. Owner is deliberately not a foreign key to
-- users: documents may arrive over NATS for owners provisioned elsewhere.
-- Every table holding user data carries an owner column and the indexes
-- that serve user-facing queries lead with it, so every query is scoped by
-- owner and stays cheap as the number of tenants grows.

CREATE TABLE users (
    id            text PRIMARY KEY,
    -- Stored lowercased so uniqueness is case-insensitive without citext.
    email         text NOT NULL UNIQUE CHECK (email = lower(email)),
    display_name  text NOT NULL DEFAULT '',
    password_hash text,            -- NULL for users that only log in via SSO / tokens
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT '',
    -- Only the hash is kept: a leaked table does not leak usable tokens.
    token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, created_at DESC);

-- The read model of documents, projected from DOCS events by persist.
CREATE TABLE documents (
    id              text PRIMARY KEY,
    owner           text NOT NULL CHECK (owner <> ''),
    filename        text,          -- NULL until the uploaded event is seen
    content_type    text,          -- as declared by the client
    detected_format text,          -- as detected by content
    size_bytes      bigint,
    sha256          text,
    original_key    text,
    text_key        text,
    text_sha256     text,
    status          text NOT NULL CHECK (status IN
                        ('uploaded', 'extracting', 'extracted', 'analyzing', 'queued', 'analyzed', 'failed')),
    -- (run, status_rank) only ever increases: see persist/project.go.
    status_rank     int NOT NULL,
    run             int NOT NULL,
    failure_stage   text,
    failure_reason  text,
    failure_class   text,
    words           int,
    chars           int,
    pages           int,
    truncated       boolean,
    score           int,
    risk_level      text,
    -- Earliest event time seen, i.e. the upload time once the uploaded event
    -- is projected; never NULL so keyset pagination has a total order.
    uploaded_at     timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    completed_at    timestamptz,
    deleted_at      timestamptz,   -- soft delete, set by the API
    last_event_seq  bigint NOT NULL DEFAULT 0,
    correlation_id  text
);
CREATE INDEX documents_owner_uploaded_idx ON documents (owner, uploaded_at DESC, id DESC);
CREATE INDEX documents_owner_status_idx   ON documents (owner, status);
CREATE INDEX documents_owner_risk_idx     ON documents (owner, risk_level);
CREATE INDEX documents_owner_score_idx    ON documents (owner, score);
CREATE INDEX documents_owner_filename_idx ON documents (owner, lower(filename) text_pattern_ops);

-- Stage history and audit trail: one row per event id. No foreign key to
-- documents: the log may hold an event before (or without) its document
-- row, e.g. event types this version does not project.
CREATE TABLE document_events (
    event_id       text PRIMARY KEY,
    stream_seq     bigint NOT NULL DEFAULT 0,
    document_id    text NOT NULL,
    owner          text NOT NULL,
    run            int NOT NULL,
    type           text NOT NULL,
    stage          text,
    status         text,           -- the document status the event implies, if any
    source         text,
    correlation_id text,
    detail         jsonb,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX document_events_document_idx ON document_events (document_id, occurred_at);
CREATE INDEX document_events_owner_idx    ON document_events (owner, occurred_at DESC);

-- One assessment per document run; a re-analysis is a new run.
CREATE TABLE assessments (
    document_id    text NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    run            int NOT NULL,
    owner          text NOT NULL,
    result         jsonb NOT NULL,
    score          int NOT NULL,
    risk_level     text NOT NULL,
    model          text NOT NULL DEFAULT '',
    prompt_version text NOT NULL DEFAULT '',
    attempts       jsonb NOT NULL DEFAULT '[]',
    input_tokens   int NOT NULL DEFAULT 0,
    output_tokens  int NOT NULL DEFAULT 0,
    cost_usd       numeric(14, 6) NOT NULL DEFAULT 0,
    text_sha256    text,
    cached         boolean NOT NULL DEFAULT false,
    event_id       text,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (document_id, run)
);
CREATE INDEX assessments_owner_idx ON assessments (owner, created_at DESC);
-- The analyzer's result cache looks assessments up by text and prompt.
CREATE INDEX assessments_text_idx ON assessments (text_sha256, prompt_version);

CREATE TABLE chat_sessions (
    id          text PRIMARY KEY,
    owner       text NOT NULL,
    document_id text REFERENCES documents (id) ON DELETE CASCADE,
    title       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_sessions_owner_idx    ON chat_sessions (owner, updated_at DESC, id DESC);
CREATE INDEX chat_sessions_document_idx ON chat_sessions (owner, document_id);

CREATE TABLE chat_messages (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id    text NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    owner         text NOT NULL,
    role          text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content       text NOT NULL,
    model         text,
    input_tokens  int,
    output_tokens int,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_messages_session_idx ON chat_messages (owner, session_id, id);

CREATE TABLE webhook_subscriptions (
    id          text PRIMARY KEY,
    owner       text NOT NULL,
    url         text NOT NULL CHECK (url ~ '^https?://'),
    -- The signing secret itself (HMAC needs it); the application may
    -- encrypt it before storing.
    secret      text NOT NULL,
    event_types text[] NOT NULL DEFAULT '{}',   -- empty = every event type
    description text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_subscriptions_owner_idx ON webhook_subscriptions (owner, created_at DESC);
CREATE INDEX webhook_subscriptions_active_idx ON webhook_subscriptions (owner) WHERE active;

CREATE TABLE webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    owner           text NOT NULL,
    event_id        text NOT NULL,
    document_id     text,
    event_type      text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    attempts        int NOT NULL DEFAULT 0,
    response_code   int,
    error           text,
    duration_ms     int,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    -- A redelivered event must not be posted to a subscriber twice.
    UNIQUE (subscription_id, event_id)
);
CREATE INDEX webhook_deliveries_owner_idx ON webhook_deliveries (owner, created_at DESC);
-- The delivery worker's queue; not a user-facing query, so not owner-led.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
