"""SQLite specifics: one writer path under load, cancellation, closing."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from loop_ticks import LoopTicks
from voicedock.domain.records import CallEvent, CallMessage
from voicedock.errors import StoreUnavailable
from voicedock.store import CallQuery, StoreError
from voicedock.store.sqlite import CHECKPOINT_COMMITS, SqliteStore

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


@pytest.mark.parametrize("brief", [False, True])
async def test_two_stores_on_one_file_wait_instead_of_failing(tmp_path: Path, brief: bool) -> None:
    """Two processes (here: two stores) on one file wait for each other's lock, not errors
    (a brief transaction that finds the file locked waits for it in the writer thread)."""
    path = str(tmp_path / "shared.db")
    first = await SqliteStore.open(path)
    second = await SqliteStore.open(path)
    try:
        await first.migrate()
        await second.migrate()
        org = await seed_org(first)

        async def write(store: SqliteStore) -> None:
            for _ in range(20):
                async with store.transaction(brief=brief) as tx:
                    await tx.insert_call(make_call(org.id))
                    await asyncio.sleep(0)  # the other store's BEGIN finds the file locked

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


@pytest.mark.parametrize("brief", [False, True])
async def test_cancelled_transaction_rolls_back_and_frees_the_writer(
    sqlite_store: SqliteStore, brief: bool
) -> None:
    org = await seed_org(sqlite_store)
    started = asyncio.Event()

    async def slow_writer() -> None:
        async with sqlite_store.transaction(brief=brief) as tx:
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


async def test_reads_go_on_while_the_event_loop_is_busy(tmp_path: Path) -> None:
    """Each reading thread keeps its connection: a read done in its thread frees the thread
    for the next one at once, not when the event loop next gets to it (when a hundred calls
    answer together, a loop turn takes tens of milliseconds)."""
    store = await SqliteStore.open(str(tmp_path / "voicedock.db"), readers=1)
    try:
        ran: list[float] = []

        def read(conn: sqlite3.Connection) -> int:
            ran.append(time.monotonic())
            return int(conn.execute("SELECT 1").fetchone()[0])

        reads = [asyncio.create_task(store._reader.run(read)) for _ in range(3)]
        await asyncio.sleep(0)  # each read handed to the pool
        time.sleep(0.3)  # the loop busy
        busy_until = time.monotonic()
        assert await asyncio.gather(*reads) == [1, 1, 1]
        assert len(ran) == 3
        assert max(ran) < busy_until  # one connection, three reads meanwhile
    finally:
        await store.aclose()


async def test_aclose_lets_a_read_under_way_finish(tmp_path: Path) -> None:
    store = await SqliteStore.open(str(tmp_path / "voicedock.db"))

    def slow(conn: sqlite3.Connection) -> int:
        time.sleep(0.2)
        return int(conn.execute("SELECT 2").fetchone()[0])

    read = asyncio.create_task(store._reader.run(slow))
    await asyncio.sleep(0.05)
    await store.aclose()
    assert await read == 2  # its connection closed only after it


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
    submitted = counted_submissions(sqlite_store, monkeypatch)
    async with sqlite_store.transaction() as tx:
        assert await tx.get_call_for_update("call-none") is None
    assert len(submitted) == 2
    with pytest.raises(RuntimeError):
        async with sqlite_store.transaction():
            raise RuntimeError("before any statement")
    async with sqlite_store.transaction() as tx:
        call = await tx.insert_call(make_call(org.id))
    assert await sqlite_store.get_call(org.id, call.id) is not None


def counted_submissions(store: SqliteStore, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every statement handed to the writer thread, from now on."""
    writer = store._writer
    submitted: list[object] = []
    submit = writer.submit

    def counted(fn: Any) -> Any:
        submitted.append(fn)
        return submit(fn)

    monkeypatch.setattr(writer, "submit", counted)
    return submitted


async def test_a_brief_transaction_runs_on_the_loop_and_commits(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A brief transaction hands no statement to the writer thread (a transcript message's
    four statements were four round trips between threads); a failed one rolls back."""
    org = await seed_org(sqlite_store)
    call = await insert_call(sqlite_store, make_call(org.id))
    submitted = counted_submissions(sqlite_store, monkeypatch)
    async with sqlite_store.transaction(brief=True) as tx:
        locked = await tx.get_call_for_update(call.id)
        assert locked is not None
        await tx.add_message(CallMessage(call.id, "user", "hello"))
        await tx.add_event(CallEvent(call.id, "transcript", {"role": "user"}))
    assert submitted == []
    assert [m.content for m in await sqlite_store.list_messages(call.id)] == ["hello"]

    async def fails_after_a_statement() -> None:
        async with sqlite_store.transaction(brief=True) as tx:
            await tx.add_message(CallMessage(call.id, "user", "not kept"))
            raise RuntimeError("after a statement")

    with pytest.raises(RuntimeError):
        await fails_after_a_statement()
    assert [m.content for m in await sqlite_store.list_messages(call.id)] == ["hello"]
    assert submitted == []
    async with sqlite_store.transaction() as tx:  # not brief: in the thread, as before
        await tx.add_message(CallMessage(call.id, "user", "again"))
    assert len(submitted) == 2


async def test_a_locked_file_holds_a_brief_transaction_not_the_event_loop(
    tmp_path: Path,
) -> None:
    """Another process holds the file's write lock: the brief transaction waits for it in the
    writer thread while the event loop goes on, and commits once the lock is released; held
    longer than the store's busy timeout, it is StoreUnavailable."""
    path = str(tmp_path / "voicedock.db")
    store = await SqliteStore.open(path, busy_timeout_ms=2000)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await store.migrate()
        org = await seed_org(store)
        other.execute("BEGIN IMMEDIATE")  # another process's write lock

        async def write() -> str:
            async with store.transaction(brief=True) as tx:
                return (await tx.insert_call(make_call(org.id))).id

        async with LoopTicks() as ticks:
            writing = asyncio.create_task(write())
            await asyncio.sleep(0.3)
            assert not writing.done()
            assert ticks.count >= 10  # the loop was not held by the wait
            other.execute("ROLLBACK")
            call_id = await asyncio.wait_for(writing, 5)
        assert await store.get_call(org.id, call_id) is not None

        store_short = await SqliteStore.open(path, busy_timeout_ms=100)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailable):
                async with store_short.transaction(brief=True) as tx:
                    await tx.insert_call(make_call(org.id))
            other.execute("ROLLBACK")
        finally:
            await store_short.aclose()
    finally:
        other.close()
        await store.aclose()


async def test_the_wal_is_checkpointed_in_the_writer_thread(
    sqlite_store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No COMMIT checkpoints (the writer's automatic checkpoint is off, the COMMIT may run on
    the loop): the writer thread does, every so many commits, and so keeps the WAL from growing
    with every transaction."""
    org = await seed_org(sqlite_store)
    call = await insert_call(sqlite_store, make_call(org.id))
    submitted = counted_submissions(sqlite_store, monkeypatch)
    for n in range(10 * CHECKPOINT_COMMITS):
        async with sqlite_store.transaction(brief=True) as tx:
            await tx.add_event(CallEvent(call.id, "transcript", {"n": n, "text": "x" * 200}))
    # The checkpoints (and the statements that came while one ran) went to the thread.
    assert sqlite_store._writer.checkpoints == 10
    assert 10 <= len(submitted) < 100
    await insert_call(sqlite_store, make_call(org.id))  # after the last checkpoint
    # Each transaction appends three or four pages (4 KiB each) to the WAL; checkpointed, the
    # WAL is written again from its start. Unchecked, it would hold them all: over 30 MiB.
    wal = tmp_path / "voicedock.db-wal"
    assert wal.stat().st_size < 8 * 1024 * 1024
