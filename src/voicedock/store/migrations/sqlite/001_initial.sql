-- voicedock schema, SQLite dialect.
-- Datetimes are ISO-8601 UTC text with microseconds (lexicographic order = time order);
-- JSON documents are TEXT; booleans are 0/1.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX api_keys_org ON api_keys (organization_id);

-- Trunks are owned by the configuration and mirrored here at start-up.
CREATE TABLE trunks (
    name TEXT PRIMARY KEY,
    pbx_endpoint TEXT NOT NULL,
    codec TEXT NOT NULL DEFAULT 'ulaw',
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE assistants (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    business_name TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX assistants_org ON assistants (organization_id, created_at);

CREATE TABLE phone_numbers (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    number TEXT NOT NULL UNIQUE,
    trunk TEXT NOT NULL,
    max_concurrent_calls INTEGER NOT NULL DEFAULT 1 CHECK (max_concurrent_calls >= 0),
    assistant_id TEXT REFERENCES assistants(id) ON DELETE SET NULL,
    label TEXT NOT NULL DEFAULT '',
    last_used_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX phone_numbers_org ON phone_numbers (organization_id, last_used_at);

CREATE TABLE calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    status TEXT NOT NULL,
    caller_phone TEXT,
    assistant_phone TEXT,
    number_id TEXT REFERENCES phone_numbers(id) ON DELETE SET NULL,
    assistant_id TEXT REFERENCES assistants(id) ON DELETE SET NULL,
    agent_name TEXT,
    business_name TEXT,
    assistant_config TEXT NOT NULL DEFAULT '{}',
    first_message TEXT,
    context TEXT,
    error TEXT,
    end_reason TEXT,
    pbx_call_ref TEXT,
    started_at TEXT,
    ended_at TEXT,
    duration_seconds INTEGER,
    summary TEXT,
    analysis_result TEXT,
    latency TEXT NOT NULL DEFAULT '[]',
    transferred_to TEXT,
    transferred_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX calls_org_created ON calls (organization_id, created_at DESC, seq DESC);
CREATE INDEX calls_org_status ON calls (organization_id, status);
CREATE INDEX calls_number_status ON calls (number_id, status);
CREATE INDEX calls_pbx_ref ON calls (pbx_call_ref);
-- Active calls are few; a partial index keeps reconciliation cheap.
CREATE INDEX calls_active ON calls (status) WHERE status IN ('connecting', 'in-progress');

CREATE TABLE call_messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    interrupted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX call_messages_call ON call_messages (call_id, seq);

CREATE TABLE call_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX call_events_call ON call_events (call_id, seq);

CREATE TABLE idempotency (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (organization_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    assistant_id TEXT REFERENCES assistants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    event_types TEXT NOT NULL DEFAULT '[]',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (organization_id);

CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    msg_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until TEXT,
    delivered_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL
);
-- Pending deliveries, in due order.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_outbox_endpoint ON webhook_outbox (endpoint_id, created_at);
