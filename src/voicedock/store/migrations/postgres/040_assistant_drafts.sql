-- Drafts and gated releases (docs/assistant-versions.md): a version made by
-- POST /assistants/{id}/drafts is not live until published (published_at NULL: a draft; the
-- versions made before were live when made). release_gate: the test suite whose passing run on
-- a version lets it be published (NULL: none). A test run of a named version records it.
ALTER TABLE assistant_versions ADD COLUMN published_at TIMESTAMPTZ;
UPDATE assistant_versions SET published_at = created_at;
ALTER TABLE assistants ADD COLUMN release_gate TEXT;
ALTER TABLE test_runs ADD COLUMN assistant_version INTEGER;
