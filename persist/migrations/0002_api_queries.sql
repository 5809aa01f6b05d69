-- Indexes for the queries the REST API makes, and the record of stored
-- exports. Every index leads with owner, like the queries, and the list
-- indexes are partial on live documents: the API never lists deleted ones.

-- Filtered lists page in upload order within a status or risk level; these
-- replace the owner + status / owner + risk level indexes of 0001, which
-- could filter but not order.
DROP INDEX documents_owner_status_idx;
DROP INDEX documents_owner_risk_idx;
CREATE INDEX documents_owner_status_uploaded_idx
    ON documents (owner, status, uploaded_at, id) WHERE deleted_at IS NULL;
CREATE INDEX documents_owner_risk_uploaded_idx
    ON documents (owner, risk_level, uploaded_at, id) WHERE deleted_at IS NULL;

-- sort=score / sort=-score: unscored documents sort as -1 (see
-- persist/store/filter.go), so the keyset is a plain row comparison.
CREATE INDEX documents_owner_score_sort_idx
    ON documents (owner, (COALESCE(score, -1)), uploaded_at, id) WHERE deleted_at IS NULL;

-- GET /stats: stage times from the pipeline events of an owner's runs.
CREATE INDEX document_events_owner_type_idx ON document_events (owner, type, occurred_at);

-- Bulk exports written to the object store (POST /assessments/export), so
-- GET /exports/{id} finds the object of its owner's export by id. Each
-- exported document also gets an audit.exported entry in document_events.
CREATE TABLE exports (
    id          text PRIMARY KEY,
    owner       text NOT NULL CHECK (owner <> ''),
    format      text NOT NULL CHECK (format IN ('csv', 'json', 'ndjson')),
    object_key  text NOT NULL,
    filters     jsonb NOT NULL DEFAULT '{}',
    rows        bigint NOT NULL,
    size_bytes  bigint NOT NULL,
    sha256      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exports_owner_idx ON exports (owner, created_at DESC);

-- Filename search (q) is a case-insensitive substring match; a trigram
-- index serves it when the pg_trgm extension is available and this role
-- may create it (it is a trusted extension since PostgreSQL 13). Without
-- it the search still works, filtered after the owner index.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
            CREATE INDEX documents_filename_trgm_idx
                ON documents USING gin (lower(filename) gin_trgm_ops) WHERE deleted_at IS NULL;
        EXCEPTION WHEN insufficient_privilege OR feature_not_supported THEN
            RAISE NOTICE 'pg_trgm not installed: filename search runs without a trigram index';
        END;
    END IF;
END
$$;
