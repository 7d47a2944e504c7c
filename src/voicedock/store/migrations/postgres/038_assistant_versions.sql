-- Every change to an assistant makes a version of it, kept as it was
-- (docs/assistant-versions.md): the assistant's current one in assistants.version, the one a
-- call or a campaign ran in their assistant_version (NULL: a transient assistant, or placed
-- before versions).
-- The assistants saved before are their version 1. traffic_split: the versions its calls run
-- by the other party's number, [{"version": n, "weight": w}, ...] (NULL: the current one).
ALTER TABLE assistants ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE assistants ADD COLUMN traffic_split JSONB;
ALTER TABLE calls ADD COLUMN assistant_version INTEGER;
ALTER TABLE campaigns ADD COLUMN assistant_version INTEGER;
CREATE TABLE assistant_versions (
    assistant_id TEXT NOT NULL REFERENCES assistants(id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    name TEXT NOT NULL,
    config JSONB NOT NULL,
    business_name TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (assistant_id, version)
);
INSERT INTO assistant_versions
    (assistant_id, organization_id, version, name, config, business_name, active, created_by,
     created_at)
SELECT id, organization_id, 1, name, config, business_name, active, NULL, updated_at
FROM assistants;
