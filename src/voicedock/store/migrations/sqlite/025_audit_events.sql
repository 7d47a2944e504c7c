-- The audit trail (GET /audit-events, voicedock audit): who did what to which resource of
-- their organization, when, from which address (masked). Rows are only ever appended, and
-- deleted by retention ([retention] audit_days).
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    actor TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    address TEXT,
    console_session TEXT,
    detail TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX audit_events_org_created ON audit_events (organization_id, created_at DESC, seq DESC);
CREATE INDEX audit_events_created ON audit_events (created_at);
