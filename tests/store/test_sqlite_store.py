"""SQLite specifics: one writer path under load, cancellation, closing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from voicedock.domain.records import CallEvent
from voicedock.store import CallQuery, StoreError
from voicedock.store.sqlite import SqliteStore

from .builders import insert_call, make_call, seed_org

pytestmark = pytest.mark.unit


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(str(tmp_path / "voicedock.db"))
    try:
        await store.migrate()
        yield store
    finally:
        await store.aclose()


async def test_200_concurrent_transactions_with_reads_never_lock(
    sqlite_store: SqliteStore,
) -> None:
    org = await seed_org(sqlite_store)

    async def write(n: int) -> None:
        async with sqlite_store.transaction() as tx:
            call = await tx.insert_call(make_call(org.id))
            await tx.add_event(CallEvent(call_id=call.id, type="status", data={"n": n}))
            await asyncio.sleep(0)  # let others queue up while this transaction is open

    async def read() -> int:
        return (await sqlite_store.list_calls(CallQuery(organization_id=org.id, limit=1))).total

    results = await asyncio.gather(*(write(n) for n in range(200)), *(read() for _ in range(50)))
    assert all(isinstance(r, int) or r is None for r in results)
    page = await sqlite_store.list_calls(CallQuery(organization_id=org.id, limit=500))
    assert page.total == 200
    assert len({c.seq for c in page.calls}) == 200


async def test_two_stores_on_one_file_wait_instead_of_failing(tmp_path: Path) -> None:
    """Two processes (here: two stores) on one file rely on busy_timeout, not errors."""
    path = str(tmp_path / "shared.db")
    first = await SqliteStore.open(path)
    second = await SqliteStore.open(path)
    try:
        await first.migrate()
        await second.migrate()
        org = await seed_org(first)

        async def write(store: SqliteStore) -> None:
            for _ in range(20):
                await insert_call(store, make_call(org.id))

        await asyncio.gather(write(first), write(second))
        assert (await first.list_calls(CallQuery(organization_id=org.id))).total == 40
    finally:
        await first.aclose()
        await second.aclose()


async def test_reads_inside_a_transaction_do_not_deadlock_or_see_uncommitted_rows(
    sqlite_store: SqliteStore,
) -> None:
    org = await seed_org(sqlite_store)
    async with sqlite_store.transaction() as tx:
        call = await tx.insert_call(make_call(org.id))
        assert await sqlite_store.get_call(None, call.id) is None
    assert await sqlite_store.get_call(None, call.id) == call


async def test_cancelled_transaction_rolls_back_and_frees_the_writer(
    sqlite_store: SqliteStore,
) -> None:
    org = await seed_org(sqlite_store)
    started = asyncio.Event()

    async def slow_writer() -> None:
        async with sqlite_store.transaction() as tx:
            await tx.insert_call(make_call(org.id))
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(slow_writer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await sqlite_store.list_active_calls() == []
    call = await asyncio.wait_for(insert_call(sqlite_store, make_call(org.id)), 5)
    assert await sqlite_store.get_call(org.id, call.id) == call


async def test_reads_cancelled_midway_keep_the_pool_usable(sqlite_store: SqliteStore) -> None:
    org = await seed_org(sqlite_store)
    for _ in range(5):
        task = asyncio.create_task(sqlite_store.get_organization(org.id))
        await asyncio.sleep(0)
        task.cancel()
    results = await asyncio.gather(*(sqlite_store.get_organization(org.id) for _ in range(20)))
    assert all(r is not None and r.id == org.id for r in results)


async def test_aclose_is_idempotent_and_later_use_is_a_store_error(tmp_path: Path) -> None:
    store = await SqliteStore.open(str(tmp_path / "voicedock.db"))
    await store.migrate()
    await store.aclose()
    await store.aclose()
    with pytest.raises(StoreError):
        async with store.transaction():
            pass
    with pytest.raises(StoreError):
        await store.migrate()
    with pytest.raises(StoreError):
        await asyncio.wait_for(store.get_organization("x"), 5)


async def test_a_write_transaction_begins_with_its_first_statement(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BEGIN IMMEDIATE travels to the writer thread with the transaction's first statement:
    a transaction with one read is two round trips (the read, the COMMIT), not three. One that
    ran no statement and failed leaves nothing open, and the next one commits."""
    org = await seed_org(sqlite_store)
    writer = sqlite_store._writer
    submitted: list[object] = []
    submit = writer.submit

    def counted(fn: Any) -> Any:
        submitted.append(fn)
        return submit(fn)

    monkeypatch.setattr(writer, "submit", counted)
    async with sqlite_store.transaction() as tx:
        assert await tx.get_call_for_update("call-none") is None
    assert len(submitted) == 2
    with pytest.raises(RuntimeError):
        async with sqlite_store.transaction():
            raise RuntimeError("before any statement")
    async with sqlite_store.transaction() as tx:
        call = await tx.insert_call(make_call(org.id))
    assert await sqlite_store.get_call(org.id, call.id) is not None
