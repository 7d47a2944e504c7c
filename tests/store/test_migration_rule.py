"""Every migration of both dialects is an expand step, a marked contract step, or known history
(docs/upgrades.md): a node of the previous version keeps running on the schema a newer node
migrated, for the length of a rolling upgrade."""

from __future__ import annotations

import pytest

from voicedock.store.migrate import Migration, load_migrations

from .migration_rule import breaking

pytestmark = pytest.mark.unit

DIALECTS = ("sqlite", "postgres")

# Migrations from before the rule that break it, left as they were shipped: each version, the
# dialects it breaks the rule in, and how. A database past them is what every node meets now.
KNOWN_HISTORY: dict[int, tuple[set[str], str]] = {
    2: (
        {"sqlite", "postgres"},
        "a unique index on webhook_outbox (endpoint_id, msg_id), the pending index dropped and "
        "built again, and (PostgreSQL) payload changed from JSONB to TEXT: a contract step",
    ),
    3: ({"postgres"}, "calls_owner_active built on calls without CONCURRENTLY"),
    6: ({"postgres"}, "calls_campaign_status and calls_trunk_status built without CONCURRENTLY"),
    12: ({"postgres"}, "calls_scheduled_due built without CONCURRENTLY"),
    19: ({"postgres"}, "two webhook_outbox indexes built without CONCURRENTLY"),
}


def migrations() -> list[tuple[str, Migration]]:
    return [(dialect, m) for dialect in DIALECTS for m in load_migrations(dialect)]


@pytest.mark.parametrize(
    ("dialect", "migration"),
    migrations(),
    ids=[f"{d}-{m.version:03d}_{m.name}" for d, m in migrations()],
)
def test_each_migration_expands_or_is_a_marked_contract_step(
    dialect: str, migration: Migration
) -> None:
    findings = breaking(migration, dialect)
    if migration.contract_after is not None:
        # A contract step names a migration before it: the versions that have it no longer use
        # what this one removes (applied once every live node runs such a version).
        assert 1 <= migration.contract_after < migration.version
        return
    history = KNOWN_HISTORY.get(migration.version)
    if history is not None and dialect in history[0]:
        assert findings, f"{migration.version} is listed as known history but keeps the rule"
        return
    assert not findings, (
        f"migration {migration.version} ({dialect}) is no expand step: mark it "
        "'-- contract: unused since NNN' (docs/upgrades.md) or make it one",
        findings,
    )


def test_known_history_is_only_what_shipped_before_the_rule() -> None:
    assert max(KNOWN_HISTORY) < 23  # the rule holds from migration 023 on
    assert all(version <= load_migrations("sqlite")[-1].version for version in KNOWN_HISTORY)


def _one(sql: str) -> Migration:
    return Migration(99, "probe", sql)


EXISTING = "CREATE TABLE t (id TEXT PRIMARY KEY, a TEXT);\n"  # in an earlier migration


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE x (id TEXT PRIMARY KEY, n INTEGER NOT NULL);",
        "CREATE TABLE x (id TEXT); CREATE UNIQUE INDEX x_id ON x (id);",
        "CREATE TABLE x (id TEXT); INSERT INTO x VALUES ('a');",
        "ALTER TABLE t ADD COLUMN b TEXT;",
        "ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 0;",
        "ALTER TABLE t ADD COLUMN b BOOLEAN NOT NULL DEFAULT FALSE;\n"
        "UPDATE t SET b = TRUE WHERE a = 'x';",
        "ALTER TABLE t ADD COLUMN b TEXT REFERENCES x(id);",
        "ALTER TABLE t ALTER COLUMN a SET DEFAULT '';",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);",
        "-- a comment only\nALTER TABLE t ADD COLUMN c NUMERIC(10, 2);",
    ],
)
def test_expand_statements_pass(sql: str) -> None:
    assert breaking(_one(sql), "postgres") == []


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("DROP TABLE t;", "drops a table"),
        ("ALTER TABLE t DROP COLUMN a;", "drops a column"),
        ("ALTER TABLE t RENAME COLUMN a TO b;", "renames"),
        ("ALTER TABLE t RENAME TO u;", "renames"),
        ("ALTER TABLE t ALTER COLUMN a TYPE INTEGER USING a::integer;", "type"),
        ("ALTER TABLE t ALTER COLUMN a SET NOT NULL;", "becomes NOT NULL"),
        ("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;", "NULLs"),
        ("ALTER TABLE t ALTER COLUMN a DROP DEFAULT;", "default"),
        ("ALTER TABLE t ADD COLUMN b TEXT NOT NULL;", "NOT NULL column without a default"),
        ("ALTER TABLE t ADD COLUMN b TEXT UNIQUE;", "constraint"),
        ("ALTER TABLE t ADD CONSTRAINT a_set CHECK (a <> '');", "constraint"),
        ("ALTER TABLE t ADD COLUMN b TEXT, DROP COLUMN a;", "drops a column"),
        ("ALTER TABLE t DROP CONSTRAINT t_a_key;", "drops a constraint"),
        ("ALTER TABLE t ADD COLUMN at TIMESTAMPTZ DEFAULT now();", "volatile default"),
        ("CREATE UNIQUE INDEX t_a ON t (a);", "unique index"),
        ("CREATE INDEX t_a ON t (a);", "without CONCURRENTLY"),
        ("CREATE INDEX CONCURRENTLY t_a ON t (a);", "IF NOT EXISTS"),
        (
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\nALTER TABLE t ADD b TEXT;",
            "holds nothing else",
        ),
        ("DROP INDEX t_a;", "drops an index"),
        ("UPDATE t SET a = lower(a);", "changes values"),
        ("INSERT INTO t (id) VALUES ('x');", "adds rows"),
        ("DELETE FROM t WHERE a IS NULL;", "deletes rows"),
        ("CREATE VIEW v AS SELECT * FROM t;", "does not know"),
    ],
)
def test_what_breaks_the_previous_version_is_found(sql: str, problem: str) -> None:
    findings = breaking(_one(sql), "postgres")
    assert findings, sql
    assert problem in findings[0].problem, findings


def test_sqlite_builds_indexes_on_existing_tables_in_place() -> None:
    """SQLite has no CONCURRENTLY (and serves one node): an index there is an expand step."""
    assert breaking(_one("CREATE INDEX t_a ON t (a);"), "sqlite") == []
    assert breaking(_one("CREATE UNIQUE INDEX t_a ON t (a);"), "sqlite") != []


def test_the_contract_marker_is_read_from_the_header_only() -> None:
    header = "-- Old column.\n-- contract: unused since 025\n"
    marked = Migration(30, "drop_old", header + "DROP TABLE t;")
    assert marked.contract_after == 25
    late = Migration(30, "x", "ALTER TABLE t ADD b TEXT;\n-- contract: unused since 025\n")
    assert late.contract_after is None
    assert Migration(30, "x", EXISTING).contract_after is None
