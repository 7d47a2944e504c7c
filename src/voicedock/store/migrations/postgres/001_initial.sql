-- voicedock schema, PostgreSQL dialect: JSONB documents, timestamptz, identity sequences.

CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
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
    config JSONB NOT NULL,
    business_name TEXT NOT NULL DEFAULT '',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
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
    last_used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX phone_numbers_org ON phone_numbers (organization_id, last_used_at);

CREATE TABLE calls (
    seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    direction TEXT NOT NULL,
    status TEXT NOT NULL,
    caller_phone TEXT,
    assistant_phone TEXT,
    number_id TEXT REFERENCES phone_numbers(id) ON DELETE SET NULL,
    assistant_id TEXT REFERENCES assistants(id) ON DELETE SET NULL,
    agent_name TEXT,
    business_name TEXT,
    assistant_config JSONB NOT NULL DEFAULT '{}',
    first_message TEXT,
    context TEXT,
    error TEXT,
    end_reason TEXT,
    pbx_call_ref TEXT,
    started_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ,
    duration_seconds INTEGER,
    summary TEXT,
    analysis_result JSONB,
    latency JSONB NOT NULL DEFAULT '[]',
    transferred_to TEXT,
    transferred_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX calls_org_created ON calls (organization_id, created_at DESC, seq DESC);
CREATE INDEX calls_org_status ON calls (organization_id, status);
CREATE INDEX calls_number_status ON calls (number_id, status);
CREATE INDEX calls_pbx_ref ON calls (pbx_call_ref);
-- Active calls are few; a partial index keeps reconciliation cheap.
CREATE INDEX calls_active ON calls (status) WHERE status IN ('connecting', 'in-progress');

CREATE TABLE call_messages (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    started_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ,
    interrupted BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX call_messages_call ON call_messages (call_id, seq);

CREATE TABLE call_events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX call_events_call ON call_events (call_id, seq);

CREATE TABLE idempotency (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    assistant_id TEXT REFERENCES assistants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    event_types JSONB NOT NULL DEFAULT '[]',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (organization_id);

CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    msg_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payload JSONB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
-- Pending deliveries, in due order.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_outbox_endpoint ON webhook_outbox (endpoint_id, created_at);
