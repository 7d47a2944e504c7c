-- What an organization sets for itself (a display name, the defaults of its new assistants)
-- and the operator's override of its concurrent-call limit (NULL: the configuration's).
ALTER TABLE organizations ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE organizations ADD COLUMN assistant_defaults JSONB NOT NULL DEFAULT '{}';
ALTER TABLE organizations ADD COLUMN max_concurrent_calls INTEGER;
