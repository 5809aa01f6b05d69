-- Accounts (owned by the accounts module): roles, disabling, and API token
-- scopes.
--
-- A user id is the owner id that reaches NATS subjects and object keys, so
-- the database holds it to the subject-token rule of streams.ValidToken:
-- 1 to 64 of [A-Za-z0-9_-], never '.', '*', '>' or whitespace. Adding the
-- constraint checks existing rows: a user whose id breaks it could never
-- have had a document, and must be fixed by hand before this migration.
ALTER TABLE users
    ADD CONSTRAINT users_id_subject_token CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    ADD CONSTRAINT users_email_length CHECK (length(email) BETWEEN 3 AND 254),
    ADD CONSTRAINT users_display_name_length CHECK (length(display_name) <= 200),
    -- The PHC string carries the argon2id parameters with the hash, so they
    -- can be raised later and old hashes still verify.
    ADD CONSTRAINT users_password_hash_phc CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
    ADD COLUMN role        text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now();

-- Tokens made before scopes existed had full access; the default keeps
-- them (and tokens inserted by SQL) working as they did.
ALTER TABLE api_tokens
    ADD COLUMN scopes text[] NOT NULL DEFAULT '{read,write}'
        CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'write']::text[]),
    ADD CONSTRAINT api_tokens_name_length CHECK (length(name) <= 100);
