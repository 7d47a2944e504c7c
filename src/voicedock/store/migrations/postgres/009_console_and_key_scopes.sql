-- API keys get a scope (read_only: GET only; full: the whole API; admin: also manages the
-- organization's keys); every key from before this migration keeps the access it had.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'full';

-- The API key that placed each call (NULL: inbound calls and calls from before this migration).
ALTER TABLE calls ADD COLUMN api_key_id TEXT;

-- Web console sign-ins: an opaque cookie (only its sha256 is stored) exchanged for an API key;
-- revoking or deleting the key ends its sessions.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    api_key_id TEXT NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
