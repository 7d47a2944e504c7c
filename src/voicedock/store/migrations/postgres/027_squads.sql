-- Squads: an organization's assistants that hand a call over to each other (/squads); each
-- member's assistant and the members it may hand the call over to, as JSON.
CREATE TABLE squads (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    members JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX squads_org ON squads (organization_id, created_at, id);
-- The squad a call was placed with: its members as placed (NULL: one assistant for the call).
ALTER TABLE calls ADD COLUMN squad JSONB;
-- The squad's member whose turn a message was (NULL: the call's one assistant).
ALTER TABLE call_messages ADD COLUMN member TEXT;
-- The squad that answers inbound calls to a number, instead of its assistant (NULL: none).
ALTER TABLE phone_numbers ADD COLUMN squad_id TEXT;
-- The squad a campaign's calls are placed with, as resolved when it was created (NULL: none).
ALTER TABLE campaigns ADD COLUMN squad JSONB;
