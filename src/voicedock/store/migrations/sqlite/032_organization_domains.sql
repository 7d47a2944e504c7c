-- Domains as organizations hold them from this version on: only a verified host is unique
-- (several organizations may propose one host, pending; the first to verify it holds it, and
-- the others' proposals are dropped), and an organization names a host once. The rows of
-- domains (migration 028, where a host is unique whatever its status) are copied here;
-- domains stays for nodes of the previous version during a rolling upgrade (a domain one of
-- them adds meanwhile is not seen by this version: add it again once every node is upgraded).
CREATE TABLE organization_domains (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    verification_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    verified_at TEXT
);
CREATE UNIQUE INDEX organization_domains_verified_host ON organization_domains (host)
    WHERE status = 'verified';
CREATE UNIQUE INDEX organization_domains_org_host ON organization_domains (organization_id, host);
CREATE INDEX organization_domains_org ON organization_domains (organization_id, created_at, id);
CREATE INDEX organization_domains_host ON organization_domains (host);
INSERT INTO organization_domains
    (id, organization_id, host, kind, status, verification_token, created_at, verified_at)
SELECT id, organization_id, host, kind, status, verification_token, created_at, verified_at
FROM domains;
