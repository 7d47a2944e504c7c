"""PostgreSQL's pool: a connection given back runs nothing more on the server, and what the
store holds for a session (the migrations' lock) is its own to release."""

from __future__ import annotations

import asyncpg
import pytest

from pg_server import fresh_database
from voicedock.store import open_store
from voicedock.store.postgres.store import _MIGRATION_LOCK_KEY

pytestmark = pytest.mark.postgres

# The store's connections to the test's database, as the server saw them last.
ITS_CONNECTIONS = (
    "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)


async def test_a_read_costs_its_own_statement_and_nothing_when_its_connection_goes_back(
    postgres_server: str,
) -> None:
    dsn = await fresh_database(postgres_server, migrated=True)
    store = await open_store(dsn, connections=1)
    admin = await asyncpg.connect(dsn)
    try:
        assert await store.get_organization("no-such-organization") is None
        [last] = [row["query"] for row in await admin.fetch(ITS_CONNECTIONS)]
        # asyncpg's default reset (pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL)
        # would be the last the server saw: one more round trip on every release.
        assert "organizations" in last
        assert "RESET ALL" not in last
    finally:
        await admin.close()
        await store.aclose()


async def test_migrate_releases_the_lock_other_nodes_wait_for(postgres_server: str) -> None:
    dsn = await fresh_database(postgres_server)
    store = await open_store(dsn, connections=1)
    admin = await asyncpg.connect(dsn)
    try:
        await store.migrate()
        # Its one connection is back in the pool, open: the lock was released, not reset.
        assert await admin.fetchval("SELECT pg_try_advisory_lock($1)", _MIGRATION_LOCK_KEY)
        assert len(await admin.fetch(ITS_CONNECTIONS)) == 1
    finally:
        await admin.close()
        await store.aclose()
