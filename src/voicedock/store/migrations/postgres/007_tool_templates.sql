-- Tool templates: tools an organization stores once and its assistants reference by id.
CREATE TABLE tool_templates (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    tool JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX tool_templates_org ON tool_templates (organization_id, created_at);
