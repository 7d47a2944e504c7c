-- Analysis templates: analysis plans an organization stores once and its assistants reference
-- by id (analysis_plan = {"template_id": ...}).
CREATE TABLE analysis_templates (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    plan JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX analysis_templates_org ON analysis_templates (organization_id, created_at);
