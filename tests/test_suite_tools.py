"""The suite's own tools: what a test needs is told by its markers (``slowest_modules``), and
the PostgreSQL databases a test makes are gone when it ends (``pg_server``)."""

from __future__ import annotations

import asyncpg
import pytest

import slowest_modules
from pg_server import database_dsn, drop_fresh_databases, fresh_database


@pytest.mark.unit
@pytest.mark.parametrize("folder", ["asterisk"])
def test_a_test_needs_what_its_markers_say_not_its_folder_or_parameters(
    request: pytest.FixtureRequest, folder: str
) -> None:
    """This test's keywords hold ``asterisk`` (its parameter's id); its markers do not."""
    assert folder in request.node.keywords
    slowest_modules.mark_need([request.node])
    assert dict(request.node.user_properties)[slowest_modules.NEED] == "the code alone"
    assert slowest_modules.need_of({"postgres", "asterisk"}) == "the lab Asterisk 22"
    assert slowest_modules.need_of({"asterisk16", "asterisk", "e2e"}) == "the lab Asterisk 16"


async def _names(dsn: str, query: str) -> set[str]:
    """The first column of ``query``'s rows on ``dsn``."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(query)
    finally:
        await conn.close()
    return {str(row[0]) for row in rows}


async def _databases(server_dsn: str) -> set[str]:
    return await _names(server_dsn, "SELECT datname FROM pg_database")


async def _tables(dsn: str) -> set[str]:
    return await _names(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")


@pytest.mark.postgres
async def test_a_tests_databases_are_dropped_when_it_ends_the_sessions_kept(
    postgres_server: str,
) -> None:
    empty = await fresh_database(postgres_server)
    migrated = await fresh_database(postgres_server, migrated=True)
    kept = await fresh_database(postgres_server, for_the_session=True)
    left_open = await asyncpg.connect(migrated)  # what a test left open does not keep it
    names = {dsn.rsplit("/", 1)[1] for dsn in (empty, migrated, kept)}
    try:
        assert not await _tables(empty)
        assert "calls" in await _tables(migrated)  # the store's schema, copied
        assert names <= await _databases(postgres_server)
        drop_fresh_databases()
        left = await _databases(postgres_server)
    finally:
        await left_open.close()
    assert kept.rsplit("/", 1)[1] in left
    assert not (names - {kept.rsplit("/", 1)[1]}) & left
    conn = await asyncpg.connect(database_dsn(postgres_server, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE "{kept.rsplit("/", 1)[1]}"')
    finally:
        await conn.close()
