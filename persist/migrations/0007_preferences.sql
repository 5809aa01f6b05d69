-- Each user's preferences of the web application (its theme, the
-- dashboard's default filters and page size), kept on the server so that
-- they follow the user from browser to browser. Owned by the accounts
-- module (accounts/preferences.go); the API owns their shape and validates
-- them before they are stored, and this table bounds what it keeps.
--
-- Keyed by owner, not a foreign key to users, like every table of user
-- data (see 0001): the dev owner and owners provisioned elsewhere have no
-- users row.
CREATE TABLE user_preferences (
    owner       text PRIMARY KEY CHECK (owner ~ '^[A-Za-z0-9_-]{1,64}$'),
    preferences jsonb NOT NULL
        CHECK (jsonb_typeof(preferences) = 'object' AND octet_length(preferences::text) <= 4096),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
