"""A node on a database migrated by another version (store/migrate.py, docs/upgrades.md), on
SQLite and PostgreSQL.

During a rolling upgrade a node of the previous version starts on the schema a newer node
migrated: it runs on it and runs no migration it does not have. A database whose history is
not this version's (a migration of the same number under another name, or one missing) is
refused. A contract step waits until no live node's code predates it, and afterwards a node of
such a version is refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from pg_server import fresh_database
from store.builders import insert_call, make_call, seed_org
from voicedock.domain.records import NodeLease
from voicedock.errors import StoreError
from voicedock.store import Store, open_store
from voicedock.store.errors import SchemaMismatch
from voicedock.store.migrate import Migration, load_migrations, schema_version

pytestmark = pytest.mark.unit

NEXT = schema_version() + 1


@pytest.fixture
async def fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, unmigrated database of the parametrized backend, of this test's own."""
    if backend == "postgres":
        return await fresh_database(request.getfixturevalue("postgres_server"))
    return f"sqlite:///{tmp_path / 'voicedock.db'}"


def dialect(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def this_version(url: str) -> list[Migration]:
    return load_migrations(dialect(url))


async def migrate(url: str, migrations: Sequence[Migration] | None = None) -> None:
    """A node whose code has ``migrations`` (this version's by default) migrates ``url``."""
    store = await open_store(url)
    try:
        await store.migrate(migrations)  # type: ignore[call-arg]  # a test's migrations
    finally:
        await store.aclose()


async def applied(url: str) -> list[tuple[int, str, int | None]]:
    """``schema_migrations``: (version, name, contract_after)."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(
                "SELECT version, name, contract_after FROM schema_migrations ORDER BY version"
            ).fetchall()
        return [tuple(r) for r in rows]
    conn = await asyncpg.connect(url)
    try:
        found = await conn.fetch(
            "SELECT version, name, contract_after FROM schema_migrations ORDER BY version"
        )
    finally:
        await conn.close()
    return [(r["version"], r["name"], r["contract_after"]) for r in found]


def newer(url: str) -> list[Migration]:
    """The next version's migrations: this version's and an expand step (a nullable column
    on nodes, one with a default on calls)."""
    sql = (
        "ALTER TABLE nodes ADD COLUMN zone TEXT;\n"
        "ALTER TABLE calls ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;\n"
    )
    return [*this_version(url), Migration(NEXT, "zones", sql)]


def contract(url: str, *, unused_since: int) -> list[Migration]:
    """A version after ``newer``: it drops the column ``newer`` added to nodes."""
    sql = f"-- contract: unused since {unused_since:03d}\nALTER TABLE nodes DROP COLUMN zone;\n"
    return [*newer(url), Migration(NEXT + 1, "zones_gone", sql)]


def lease(node_id: str, now: datetime, schema: int | None) -> NodeLease:
    return NodeLease(
        node_id, "host-1", 1, "", "run", now, now + timedelta(minutes=1), schema_version=schema
    )


async def put_node(url: str, node: NodeLease) -> None:
    store = await open_store(url)
    try:
        async with store.transaction() as tx:
            await tx.put_node(node)
    finally:
        await store.aclose()


async def now_of(url: str) -> datetime:
    store = await open_store(url)
    try:
        async with store.transaction() as tx:
            return await tx.clock()
    finally:
        await store.aclose()


async def test_a_node_runs_on_a_schema_a_newer_node_migrated_and_migrates_nothing(
    fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(fresh_url, newer(fresh_url))  # the new version's node went first
    before = await applied(fresh_url)
    assert before[-1][:2] == (NEXT, "zones")

    caplog.set_level(logging.INFO, logger="voicedock.store")
    store: Store = await open_store(fresh_url)
    try:
        await store.migrate()  # this version: it does not refuse
        said = [r.getMessage() for r in caplog.records if r.name == "voicedock.store"]
        assert any(
            f"newer than this version's {NEXT - 1}" in line and f"{NEXT} zones" in line
            for line in said
        ), said
        # It works on it: its lease row and its calls leave the new columns to their defaults.
        org = await seed_org(store)
        call = await insert_call(store, make_call(org.id))
        async with store.transaction() as tx:
            now = await tx.clock()
            await tx.put_node(lease("old", now, schema_version()))
        assert [n.schema_version for n in await store.list_nodes()] == [schema_version()]
        assert await store.get_call(None, call.id) is not None
    finally:
        await store.aclose()
    assert await applied(fresh_url) == before


async def test_a_database_with_another_history_is_refused(fresh_url: str) -> None:
    await migrate(fresh_url, newer(fresh_url))
    renamed = [*this_version(fresh_url), Migration(NEXT, "something_else", "SELECT 1;")]
    with pytest.raises(SchemaMismatch, match=f"migration {NEXT} is 'zones'"):
        await migrate(fresh_url, renamed)


async def test_a_database_missing_one_of_this_versions_migrations_is_refused(
    fresh_url: str,
) -> None:
    """Migrated by a version whose migrations skipped one of this version's numbers."""
    await migrate(fresh_url, [*this_version(fresh_url), Migration(NEXT + 1, "later", "SELECT 1;")])
    with pytest.raises(SchemaMismatch, match=f"has migration {NEXT + 1} but not this version's"):
        await migrate(fresh_url, newer(fresh_url))
    assert [v for v, _, _ in await applied(fresh_url)][-2:] == [NEXT - 1, NEXT + 1]


async def test_a_contract_step_waits_for_the_nodes_still_on_an_older_version(
    fresh_url: str,
) -> None:
    await migrate(fresh_url, newer(fresh_url))
    now = await now_of(fresh_url)
    await put_node(fresh_url, lease("a", now, NEXT))
    await put_node(fresh_url, lease("b", now, NEXT - 1))  # the version before the column
    # What the contract drops is unused since NEXT: node b's version still uses it.
    with pytest.raises(SchemaMismatch, match=r"node\(s\) 'b' \(host host-1, migrations up to"):
        await migrate(fresh_url, contract(fresh_url, unused_since=NEXT))
    assert (await applied(fresh_url))[-1][0] == NEXT  # nothing of it applied

    # Node b is upgraded (its row now says NEXT); a node whose lease ran out does not count.
    await put_node(fresh_url, lease("b", now, NEXT))
    await put_node(fresh_url, dataclasses.replace(lease("gone", now, None), lease_until=now))
    await migrate(fresh_url, contract(fresh_url, unused_since=NEXT))
    assert (await applied(fresh_url))[-1] == (NEXT + 1, "zones_gone", NEXT)

    # Now a node of this version (before NEXT: its code still uses the column) is refused;
    # one of the version that added it (NEXT) runs, though it knows nothing of the contract.
    with pytest.raises(SchemaMismatch, match=f"versions before migration {NEXT} use"):
        await migrate(fresh_url)
    await migrate(fresh_url, newer(fresh_url))


async def test_nodes_of_a_version_before_they_recorded_it_count_as_the_one_before(
    fresh_url: str,
) -> None:
    """A lease row written without ``schema_version`` (a version before 023) holds up a
    contract step that needs 023 or later."""
    await migrate(fresh_url, newer(fresh_url))
    now = await now_of(fresh_url)
    await put_node(fresh_url, lease("old", now, None))
    with pytest.raises(SchemaMismatch, match="migrations up to 22"):
        await migrate(fresh_url, contract(fresh_url, unused_since=23))
    await migrate(fresh_url, contract(fresh_url, unused_since=22))  # 022's code no longer did


@pytest.mark.postgres
async def test_postgres_builds_an_index_concurrently_and_again_after_a_failed_attempt(
    postgres_dsn: str,
) -> None:
    """An index on an existing table is built ``CONCURRENTLY`` (outside a transaction); an
    attempt that failed left it invalid, and the next start builds it again."""
    await migrate(postgres_dsn)
    store = await open_store(postgres_dsn)
    try:
        org = await seed_org(store)
        for _ in range(2):
            await insert_call(store, make_call(org.id))
    finally:
        await store.aclose()
    unique = Migration(
        NEXT,
        "one_call_per_org",
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS calls_one_per_org"
        " ON calls (organization_id);\n",
    )
    with pytest.raises(StoreError):  # two calls of one organization
        await migrate(postgres_dsn, [*this_version(postgres_dsn), unique])
    conn = await asyncpg.connect(postgres_dsn)
    try:
        valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'calls_one_per_org'::regclass"
        assert await conn.fetchval(valid) is False  # left behind, invalid
        await conn.execute("DELETE FROM calls WHERE seq = (SELECT max(seq) FROM calls)")
    finally:
        await conn.close()
    await migrate(postgres_dsn, [*this_version(postgres_dsn), unique])
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await conn.fetchval(valid) is True
    finally:
        await conn.close()
    assert (await applied(postgres_dsn))[-1] == (NEXT, "one_call_per_org", None)


@pytest.mark.postgres
async def test_a_schema_change_never_queues_the_other_nodes_queries_behind_it(
    postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration whose table a long transaction holds (a busy node of the previous version)
    waits for it a moment at a time: between its attempts the queries queued behind it run, so
    the other nodes' calls go on; once the table is free the migration is applied."""
    from voicedock.store.postgres import store as postgres_store

    monkeypatch.setattr(postgres_store, "MIGRATION_LOCK_TIMEOUT_MS", 200)
    url = await fresh_database(postgres_server)
    await migrate(url)
    holder, reader = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.fetchval("SELECT count(*) FROM calls")  # holds the table while it lasts
        upgrade = asyncio.create_task(migrate(url, newer(url)))
        try:
            await asyncio.sleep(0.5)  # the ALTER TABLE has asked for its lock by now
            for _ in range(3):  # a node's queries go on, and the migration still waits
                async with asyncio.timeout(5):
                    assert await reader.fetchval("SELECT count(*) FROM calls") == 0
                assert not upgrade.done()
            await holding.rollback()
            async with asyncio.timeout(15):
                await upgrade
        finally:
            upgrade.cancel()
        assert (await applied(url))[-1] == (NEXT, "zones", None)
        assert await reader.fetchval("SELECT priority FROM calls LIMIT 1") is None  # the column
    finally:
        await holder.close()
        await reader.close()


@pytest.mark.postgres
async def test_a_schema_change_gives_up_when_its_table_stays_held(
    postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held through every attempt, the migration gives up as the store unavailable for now,
    naming it, and nothing of it is applied."""
    from voicedock.errors import StoreUnavailable
    from voicedock.store.postgres import store as postgres_store

    monkeypatch.setattr(postgres_store, "MIGRATION_LOCK_TIMEOUT_MS", 50)
    monkeypatch.setattr(postgres_store, "MIGRATION_LOCK_ATTEMPTS", 2)
    url = await fresh_database(postgres_server)
    await migrate(url)
    holder = await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.fetchval("SELECT count(*) FROM calls")
            with pytest.raises(StoreUnavailable, match=f"migration {NEXT} could not lock"):
                await migrate(url, newer(url))
        assert (await applied(url))[-1][0] == NEXT - 1
    finally:
        await holder.close()
