"""A store that is unavailable for a while: ``StoreUnavailable``, and writes that wait for it.

SQLite: another process holds ``BEGIN EXCLUSIVE`` on the file. PostgreSQL: every backend of
the database is terminated (``pg_terminate_backend``) and new connections are refused for a
moment, as during a failover. A call's events written meanwhile through ``until_stored``
(what the runner's write backlog does with PBX events) are all stored, in order; one attempt is a
``StoreUnavailable`` (not a plain ``StoreError``: the API answers it with a 503).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from fakes.sqlite_lock import exclusive_lock
from store.builders import BASE_TIME, insert_call, make_call, seed_org
from voicedock.domain.records import CallEvent
from voicedock.errors import StoreUnavailable
from voicedock.store import Store, open_store
from voicedock.store.backlog import until_stored

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

OUTAGE_SECONDS = 3.0


@contextlib.asynccontextmanager
async def sqlite_locked(path: str) -> AsyncIterator[None]:
    async with exclusive_lock(path, OUTAGE_SECONDS) as released:
        yield
        await released


@contextlib.asynccontextmanager
async def postgres_failing_over(dsn: str) -> AsyncIterator[None]:
    """Cut every connection to the database and refuse new ones for ``OUTAGE_SECONDS``."""
    parts = urlsplit(dsn)
    database = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )

        async def reopen() -> None:
            await asyncio.sleep(OUTAGE_SECONDS)
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')

        async with asyncio.TaskGroup() as tg:
            tg.create_task(reopen())
            yield
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await admin.close()


def outage(backend: str, store_url: str) -> contextlib.AbstractAsyncContextManager[None]:
    if backend == "sqlite":
        return sqlite_locked(urlsplit(store_url).path)
    return postgres_failing_over(store_url)


async def test_outage_is_unavailable_and_waiting_writes_are_stored_in_order(
    store: Store, backend: str, store_url: str
) -> None:
    org = await seed_org(store)
    call = await insert_call(store, make_call(org.id))

    async def add(n: int) -> None:
        async with store.transaction() as tx:
            await tx.add_event(CallEvent(call.id, "status", {"n": n}, BASE_TIME))

    loop = asyncio.get_running_loop()
    async with outage(backend, store_url):
        started = loop.time()
        with pytest.raises(StoreUnavailable):
            await add(0)
        for n in (1, 2, 3):
            await until_stored(lambda n=n: add(n), what=f"event {n}")  # type: ignore[misc]
        assert loop.time() - started >= OUTAGE_SECONDS - 1.5  # they waited for the store
    events = await store.list_events(call.id)
    assert [e.data["n"] for e in events] == [1, 2, 3]


@pytest.mark.postgres
async def test_a_column_another_node_adds_makes_one_attempt_unavailable_and_the_retry_reads(
    postgres_dsn: str,
) -> None:
    """A newer node's migration adds a column while this node is running (a rolling upgrade):
    this node's statement prepared with ``SELECT *`` no longer returns what it did. In a
    transaction asyncpg cannot prepare it again by itself; the attempt is ``StoreUnavailable``
    (the write backlog and the API's 503 retry it), and the retry reads the call."""
    opened = await open_store(postgres_dsn, connections=1)  # one connection: its cache is hit
    try:
        await opened.migrate()
        org = await seed_org(opened)
        call = await insert_call(opened, make_call(org.id))

        async def read_for_update() -> str:
            async with opened.transaction() as tx:
                found = await tx.get_call_for_update(call.id)
                assert found is not None
                return found.id

        assert await read_for_update() == call.id  # prepared and cached
        other = await asyncpg.connect(postgres_dsn)
        try:
            await other.execute("ALTER TABLE calls ADD COLUMN added_by_a_newer_node text")
        finally:
            await other.close()
        with pytest.raises(StoreUnavailable, match="InvalidCachedStatementError"):
            await read_for_update()
        assert await until_stored(read_for_update, what="the call") == call.id
    finally:
        await opened.aclose()
