-- Test suites: an organization's simulated callers and what each expects (/test-suites), their
-- runs (POST /test-suites/{id}/runs), and the test calls a run makes, kept out of the calls
-- list and usage unless asked for (calls.test_run_id).
CREATE TABLE test_suites (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scenarios TEXT NOT NULL,
    assistant_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX test_suites_org ON test_suites (organization_id, created_at, id);
CREATE TABLE test_runs (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    suite_id TEXT NOT NULL REFERENCES test_suites(id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    assistant_id TEXT,
    assistant TEXT,
    results TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT
);
CREATE INDEX test_runs_suite ON test_runs (suite_id, created_at);
ALTER TABLE calls ADD COLUMN test_run_id TEXT;
