"""Migrations are applied once, in order, per backend; open_store understands the URLs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
import pytest

from voicedock.store import Store, StoreError, open_store
from voicedock.store.migrate import (
    CREATE_SCHEMA_MIGRATIONS,
    load_migrations,
    split_statements,
)

from .builders import seed_org

pytestmark = pytest.mark.unit

LISTEN_GRANT = 17  # the migration that gave API keys their listen grant

EXPECTED_TABLES = {
    "organizations",
    "api_keys",
    "trunks",
    "phone_numbers",
    "assistants",
    "calls",
    "call_messages",
    "call_events",
    "idempotency",
    "webhook_endpoints",
    "webhook_outbox",
    "nodes",
    "node_commands",
    "campaigns",
    "campaign_contacts",
    "trunk_dials",
    "do_not_call",
    "operator_do_not_call",
    "console_sessions",
    "tool_templates",
    "provider_keys",
    "analysis_templates",
    "event_streams",
    "test_suites",
    "squads",
    "rate_cards",
    "spend_limits",
    "spend_alerts",
    "domains",
    "organization_domains",
    "organization_branding",
    "test_runs",
    "audit_events",
    "knowledge_bases",
    "knowledge_documents",
    "knowledge_chunks",
    "knowledge_terms",
    "assistant_versions",
    "caller_memories",
    "record_versions",
    "schema_migrations",
}
# SQLite's full-text index of the knowledge chunks (FTS5 keeps it in tables of its own).
SQLITE_FTS_TABLES = {
    "knowledge_chunks_fts",
    "knowledge_chunks_fts_data",
    "knowledge_chunks_fts_idx",
    "knowledge_chunks_fts_docsize",
    "knowledge_chunks_fts_config",
}


def test_both_dialects_ship_the_same_numbered_migrations() -> None:
    sqlite_ones = load_migrations("sqlite")
    postgres_ones = load_migrations("postgres")
    assert [m.version for m in sqlite_ones] == sorted(m.version for m in sqlite_ones)
    assert [(m.version, m.name) for m in sqlite_ones] == [
        (m.version, m.name) for m in postgres_ones
    ]
    assert sqlite_ones[0].version == 1


def test_sqlite_statement_splitter_keeps_semicolons_inside_strings() -> None:
    script = "-- heading\nCREATE TABLE t (x TEXT DEFAULT 'a;b');\n\n-- tail comment\nSELECT 1;\n"
    assert split_statements(script) == [
        "-- heading\nCREATE TABLE t (x TEXT DEFAULT 'a;b');",
        "-- tail comment\nSELECT 1;",
    ]
    assert split_statements("-- only a comment\n\n") == []
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("SELECT 1")


# PostgreSQL's count of each knowledge base's words (SQLite's FTS5 keeps its own).
POSTGRES_ONLY = {"knowledge_terms"}


async def table_names(store_url: str) -> set[str]:
    if store_url.startswith("sqlite"):
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return ({r[0] for r in rows} - {"sqlite_sequence"} - SQLITE_FTS_TABLES) | POSTGRES_ONLY
    conn = await asyncpg.connect(store_url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_migrate_twice_is_a_no_op(store: Store, store_url: str) -> None:
    org = await seed_org(store)
    await store.migrate()
    assert await table_names(store_url) == EXPECTED_TABLES
    assert await store.get_organization(org.id) == org  # data untouched
    # a second process/node opening the same database migrates nothing either
    again = await open_store(store_url)
    try:
        await again.migrate()
        assert await again.get_organization(org.id) == org
    finally:
        await again.aclose()


@pytest.mark.postgres
async def test_two_postgres_nodes_migrating_at_once(postgres_dsn: str) -> None:
    import asyncio

    nodes = [await open_store(postgres_dsn) for _ in range(3)]
    try:
        await asyncio.gather(*(node.migrate() for node in nodes))
        assert await table_names(postgres_dsn) == EXPECTED_TABLES
        conn = await asyncpg.connect(postgres_dsn)
        try:
            applied = await conn.fetch("SELECT version FROM schema_migrations")
        finally:
            await conn.close()
        assert [r["version"] for r in applied] == [m.version for m in load_migrations("postgres")]
    finally:
        for node in nodes:
            await node.aclose()


async def test_open_store_sqlite_creates_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "voicedock.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        await store.migrate()
        assert path.exists()
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        await store.aclose()


async def test_open_store_memory_is_private_and_removed_on_close() -> None:
    first = await open_store("sqlite:///:memory:")
    second = await open_store("sqlite:///:memory:")
    try:
        await first.migrate()
        await second.migrate()
        org = await seed_org(first)
        assert await first.get_organization(org.id) == org
        assert await second.get_organization(org.id) is None
        db_path = Path(first.path)  # type: ignore[attr-defined]
        assert db_path.exists()
    finally:
        await first.aclose()
        await second.aclose()
    assert not db_path.exists()


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://relative.db", "sqlite:///", "no-scheme"])
async def test_open_store_rejects_unusable_urls(url: str) -> None:
    with pytest.raises(StoreError):
        await open_store(url)


async def test_unreachable_postgres_is_a_store_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connection refused
        with pytest.raises(StoreError):
            await open_store(f"postgresql://nobody@127.0.0.1:{port}/none")


async def test_sqlite_unwritable_path_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError):
        await open_store(f"sqlite:///{blocker}/voicedock.db")


async def test_keys_from_before_the_listen_grant_keep_what_they_could_do(tmp_path: Path) -> None:
    """An operator upgrades a database whose keys predate the listen grant (migration 17):
    full and admin keys still hear live calls, read-only keys (dashboards) no longer do."""
    path = tmp_path / "voicedock.db"
    with sqlite3.connect(path) as conn:
        conn.execute(CREATE_SCHEMA_MIGRATIONS)
        for migration in load_migrations("sqlite"):
            if migration.version >= LISTEN_GRANT:
                break
            for statement in split_statements(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.name, "2026-01-01T00:00:00+00:00"),
            )
        conn.execute(
            "INSERT INTO organizations (id, name, created_at) VALUES ('o', 'acme', '2026-01-01')"
        )
        for key_id, scope in (("k1", "read_only"), ("k2", "full"), ("k3", "admin")):
            conn.execute(
                "INSERT INTO api_keys (id, organization_id, key_hash, name, created_at, scope)"
                " VALUES (?, 'o', ?, '', '2026-01-01T00:00:00+00:00', ?)",
                (key_id, key_id * 32, scope),
            )
    store = await open_store(f"sqlite:///{path}")
    try:
        await store.migrate()
        keys = {key.id: key.listen for key in await store.list_api_keys("o")}
    finally:
        await store.aclose()
    assert keys == {"k1": False, "k2": True, "k3": True}
