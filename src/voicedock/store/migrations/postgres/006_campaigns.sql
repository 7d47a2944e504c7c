-- Campaigns: batches of outbound calls dialed within the trunks' calls-per-second and channel
-- limits (calls/dial_limits.py), in each contact's calling window, with retries per outcome.
-- Limits a carrier contracts per trunk; 0: none.
ALTER TABLE trunks ADD COLUMN max_cps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE trunks ADD COLUMN max_channels INTEGER NOT NULL DEFAULT 0;
-- The campaign a call dials one of the contacts of (NULL: any other call).
ALTER TABLE calls ADD COLUMN campaign_id TEXT;
ALTER TABLE calls ADD COLUMN trunk TEXT;
CREATE INDEX calls_campaign_status ON calls (campaign_id, status);
CREATE INDEX calls_trunk_status ON calls (trunk, status);

-- Every originate on a trunk, kept a few seconds: its calls-per-second window. ``at``: when
-- it was admitted; ``done_at``: when the PBX had answered the originate (the channel exists by
-- then); NULL while it is on its way.
CREATE TABLE trunk_dials (
    seq BIGSERIAL PRIMARY KEY,
    trunk TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    done_at TIMESTAMPTZ
);
CREATE INDEX trunk_dials_trunk_at ON trunk_dials (trunk, at);

CREATE TABLE campaigns (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    assistant_id TEXT,
    agent_name TEXT,
    business_name TEXT,
    assistant_config JSONB NOT NULL,
    context TEXT,
    number_ids JSONB NOT NULL DEFAULT '[]',
    max_concurrent INTEGER NOT NULL,
    ring_timeout_seconds INTEGER NOT NULL,
    calling_window JSONB,
    timezone TEXT NOT NULL,
    retries JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX campaigns_org ON campaigns (organization_id, seq);
CREATE INDEX campaigns_status ON campaigns (status);

CREATE TABLE campaign_contacts (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    name TEXT,
    timezone TEXT,
    variables JSONB NOT NULL DEFAULT '{}',
    state TEXT NOT NULL,
    outcome TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    call_id TEXT,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX campaign_contacts_due ON campaign_contacts (campaign_id, state, next_attempt_at);
CREATE INDEX campaign_contacts_call ON campaign_contacts (call_id);

-- Numbers an organization must never call (checked when a contact is dialed).
CREATE TABLE do_not_call (
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    number TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organization_id, number)
);
