-- Domains: the host names each organization holds (/domains), unique across organizations;
-- a console domain shows the organization's branding, a sip domain routes inbound calls.
CREATE TABLE domains (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    host TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    verification_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    verified_at TEXT
);
CREATE INDEX domains_org ON domains (organization_id, created_at, id);
-- The console's branding on an organization's console domains (the operator's).
CREATE TABLE organization_branding (
    organization_id TEXT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    logo BLOB,
    logo_type TEXT,
    updated_at TEXT NOT NULL
);
