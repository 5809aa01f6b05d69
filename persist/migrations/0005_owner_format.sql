-- Every owner column holds an owner id as users.id does (0004): one NATS
-- subject token of 1 to 64 of [A-Za-z0-9_-], never '.', '*', '>' or
-- whitespace. The owner is part of every document subject and object key,
-- so a row whose owner breaks the rule could stand for a wildcard or
-- another owner's prefix. Adding the constraints checks existing rows;
-- events on subjects with such owners were never valid, and a row that
-- breaks the rule must be fixed by hand before this migration.
-- (api_tokens.user_id references users.id, which 0004 holds to the rule.)
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['documents', 'document_events', 'assessments', 'chat_sessions',
                             'chat_messages', 'webhook_subscriptions', 'webhook_deliveries', 'exports']
    LOOP
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (owner ~ %L)',
                       t, t || '_owner_subject_token', '^[A-Za-z0-9_-]{1,64}$');
    END LOOP;
END
$$;
