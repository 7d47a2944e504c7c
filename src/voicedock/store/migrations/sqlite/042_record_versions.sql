-- Every change to a squad or a tool template makes a version of it, kept as it was
-- (docs/assistant-versions.md, "Squads and tool templates"): the record's current one in its
-- version column; each version's settings as JSON in record_versions.body (a squad's name and
-- members, a template's tool), kind naming what it is a version of ('squad', 'tool_template').
-- The versions go with their record (the store's delete) and with their organization.
-- The squads and tool templates saved before are their version 1.
ALTER TABLE squads ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tool_templates ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE TABLE record_versions (
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (kind, record_id, version)
);
INSERT INTO record_versions
    (kind, record_id, organization_id, version, body, created_by, created_at)
SELECT 'squad', id, organization_id, 1, json_object('name', name, 'members', json(members)),
    NULL, updated_at
FROM squads;
INSERT INTO record_versions
    (kind, record_id, organization_id, version, body, created_by, created_at)
SELECT 'tool_template', id, organization_id, 1, json_object('tool', json(tool)), NULL,
    updated_at
FROM tool_templates;
