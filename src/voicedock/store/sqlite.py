"""SQLite backend: the embedded default.

One writer connection, guarded by an asyncio lock, runs every write transaction as
``BEGIN IMMEDIATE`` ... ``COMMIT``: writes never contend with each other inside the process, so
there is no "database is locked" under load. Its statements run in a dedicated thread, in order;
a *brief* transaction's (a few statements on rows found by key: a call's event, a transcript
message) run on the event loop itself while that thread has nothing queued, because there they
cost tens of microseconds and a round trip between the threads costs more than that. Nothing
that could hold the loop up runs there: the loop never waits for a lock (the writer's own
``busy_timeout`` is 0; a BEGIN that finds the database locked waits in the thread), and the WAL
is checkpointed in the thread, never inside a COMMIT.

Another process on the same file (a backup, the CLI) is covered by a short wait for its lock
(``busy_timeout_ms``); a lock held longer raises ``StoreUnavailable`` (busy/locked), which
callers retry or answer with a 503, instead of stalling every write behind one long wait. WAL
mode lets a small pool of read-only connections read concurrently with the writer. ``:memory:``
is served by a private temporary file so that readers and the writer see the same database; it
is deleted by ``aclose()``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import queue
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from voicedock.errors import StoreError, StoreUnavailable
from voicedock.store.base import Transaction
from voicedock.store.errors import DuplicateKeyError
from voicedock.store.migrate import (
    CREATE_SCHEMA_MIGRATIONS,
    Migration,
    check_contract,
    load_migrations,
    pending,
)
from voicedock.store.sql.conn import Conn, Row, SqlValue
from voicedock.store.sql.locks import NoLocks
from voicedock.store.sql.outbox import SqlOutbox
from voicedock.store.sql.reads import SqlReads
from voicedock.store.sql.rows import SQLITE
from voicedock.store.sql.transaction import SqlTransaction

if TYPE_CHECKING:
    from voicedock.domain.webhooks import Outbox

T = TypeVar("T")

log = logging.getLogger(__name__)

MEMORY = ":memory:"
# How long a write waits for another process's lock before it is ``StoreUnavailable``.
BUSY_TIMEOUT_MS = 1000
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6  # primary result codes (extended codes keep them low)
# Commits, or rows changed, between two checkpoints of the WAL: about the 1,000 pages after
# which SQLite's own checkpoint (automatic, in a COMMIT) would run; a brief transaction adds 3-4
# pages to the WAL.
CHECKPOINT_COMMITS = 250
CHECKPOINT_CHANGES = 1000


def _unavailable(exc: sqlite3.Error) -> bool:
    """Busy or locked: another connection holds the lock; the same work may succeed later."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def _translated(fn: Callable[[], T]) -> T:
    """Run ``fn`` (in a database thread) with sqlite3 errors turned into ``StoreError``."""
    try:
        return fn()
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise DuplicateKeyError(f"sqlite: {exc}") from exc
        raise StoreError(f"sqlite: {exc}") from exc
    except sqlite3.Error as exc:
        if _unavailable(exc):
            raise StoreUnavailable(f"sqlite: {exc}") from exc
        raise StoreError(f"sqlite: {exc}") from exc


def _connect(path: str, busy_timeout_ms: int, *, read_only: bool) -> sqlite3.Connection:
    # isolation_level=None: autocommit, so transactions are exactly the BEGINs we issue.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    else:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"sqlite: cannot enable WAL mode (got {mode})")
        # In WAL mode NORMAL loses no committed data on a crash of the process.
        conn.execute("PRAGMA synchronous = NORMAL")
        # No checkpoint inside a COMMIT (which may run on the event loop): the writer queues
        # them in its thread (_WriterConn.committed).
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    return conn


def _begin_waiting(conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """BEGIN IMMEDIATE on the writer (whose own ``busy_timeout`` is 0), waiting up to
    ``busy_timeout_ms`` for another process's lock: in a database thread only."""
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def _run_statement(conn: sqlite3.Connection, sql: str, args: tuple[SqlValue, ...]) -> int:
    cursor = conn.execute(sql, args)
    cursor.close()
    return cursor.rowcount if cursor.rowcount >= 0 else 0


def _fetch(conn: sqlite3.Connection, sql: str, args: tuple[SqlValue, ...]) -> list[Row]:
    cursor = conn.execute(sql, args)
    try:
        return [dict(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _live_nodes(conn: sqlite3.Connection) -> list[Row]:
    """The nodes whose lease is alive, by this host's clock (SQLite's leases are written by
    it)."""
    now = SQLITE.encode_datetime(datetime.now(UTC))
    rows = conn.execute("SELECT * FROM nodes WHERE lease_until > ?", (now,)).fetchall()
    return [dict(r) for r in rows]


class _ThreadedConn(abc.ABC):
    """``Conn``'s reads over ``run``: a function on one of the database's connections, in its
    thread."""

    @abc.abstractmethod
    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        return await self.run(lambda c: _fetch(c, sql, args))

    async def fetchrow(self, sql: str, *args: SqlValue) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


class _WriterConn(_ThreadedConn):
    """``Conn`` on the writer connection. Statements hop to the writer thread, in order; a brief
    session's run on the event loop instead while no hop is under way (so the order holds)."""

    def __init__(self, executor: ThreadPoolExecutor, busy_timeout_ms: int) -> None:
        self._executor = executor
        self.busy_timeout_ms = busy_timeout_ms
        self.conn: sqlite3.Connection | None = None
        # A write session began: its BEGIN IMMEDIATE runs together with the session's first
        # statement (in the thread, each submission is a round trip between threads).
        self.begin_due = False
        self.brief = False  # the session in progress is brief
        self._queued = 0  # submissions to the thread the loop has not seen done yet
        self._commits = 0  # since the last checkpoint
        self._changes = 0  # the connection's total_changes at the last checkpoint
        self.checkpoints = 0  # queued since the store opened

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """Queue ``fn`` now: the single thread runs submissions in order, which is what
        lets a rollback queued by a cancelled task still run before the next BEGIN."""
        begin, self.begin_due = self.begin_due, False
        wait_ms = self.busy_timeout_ms

        def call() -> T:
            conn = self.conn
            if conn is None:
                raise StoreError("sqlite: store is closed")
            if begin:
                _translated(lambda: _begin_waiting(conn, wait_ms))
            return _translated(lambda: fn(conn))

        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        self._queued += 1
        future.add_done_callback(self._done)
        return future

    def _done(self, _: object) -> None:
        self._queued -= 1

    def _here(self) -> sqlite3.Connection | None:
        """The connection, if the next statement may run on the loop: in a brief session,
        with nothing queued for the thread."""
        if self.brief and self._queued == 0:
            return self.conn
        return None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on the writer connection, here or in the thread."""
        conn = self._here()
        if conn is not None:
            if self.begin_due:
                try:
                    _translated(lambda: conn.execute("BEGIN IMMEDIATE"))
                except StoreUnavailable:
                    # Another process holds the database's lock: wait for it in the thread.
                    return await asyncio.shield(self.submit(fn))
                self.begin_due = False
            return _translated(lambda: fn(conn))
        # Shielded: a cancelled caller must not leave us unsure whether the statement ran
        # before the rollback that its transaction queues next.
        return await asyncio.shield(self.submit(fn))

    async def rollback(self) -> None:
        """Roll back the session's transaction, if it began; its own failure is not raised
        (it must not hide the error that led to it). Queued in the thread before the write
        lock is released, so it runs before the next BEGIN even if waiting for it is
        cancelled."""

        def rollback(conn: sqlite3.Connection) -> None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

        self.begin_due = False  # a session that ran no statement has no BEGIN to roll back
        conn = self._here()
        if conn is not None:
            with contextlib.suppress(StoreError):
                _translated(lambda: rollback(conn))
            return
        future = self.submit(rollback)
        with contextlib.suppress(Exception):
            await asyncio.shield(future)

    def committed(self) -> None:
        """A session committed. Every ``CHECKPOINT_COMMITS`` commits or ``CHECKPOINT_CHANGES``
        rows changed, a checkpoint of the WAL is queued in the thread: it writes pages into the
        database file and syncs it, which no COMMIT on the loop may wait for. The statements
        after it wait for it there, as they waited for SQLite's own checkpoint inside a COMMIT;
        so it checkpoints the whole WAL, and the next transaction writes the WAL from its
        start again (a checkpoint beside a stream of writes would never catch up with them)."""
        conn = self.conn
        if conn is None:
            return
        self._commits += 1
        changes = conn.total_changes
        if self._commits < CHECKPOINT_COMMITS and changes - self._changes < CHECKPOINT_CHANGES:
            return
        self._commits, self._changes = 0, changes
        self.checkpoints += 1
        self.submit(_checkpoint).add_done_callback(_log_failed_checkpoint)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)

    async def execute(self, sql: str, *args: SqlValue) -> int:
        return await self.run(lambda c: _run_statement(c, sql, args))


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _log_failed_checkpoint(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("sqlite: a WAL checkpoint failed: %s", future.exception())


class _ReaderPool(_ThreadedConn):
    """``Conn`` over a few read-only connections, one for each thread of the pool's own: a
    thread takes its connection when it starts and keeps it, so it is free for the next read
    the moment a read is done, whenever the event loop then gets to the result. (Handed back
    through the loop, a connection waited for a loop turn between two reads: when a hundred
    calls answered together, each turn took about 16 ms and their 200 reads 0.9 s.)"""

    def __init__(self, connections: list[sqlite3.Connection]) -> None:
        self._all = connections
        spare: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        for conn in connections:
            spare.put(conn)
        self._local = threading.local()

        def take() -> None:  # each thread, as it starts: at most one thread per connection
            self._local.conn = spare.get_nowait()

        self._executor = ThreadPoolExecutor(
            max_workers=len(connections),
            thread_name_prefix="voicedock-sqlite-read",
            initializer=take,
        )
        self._closed = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("sqlite: store is closed")
        local = self._local

        def read() -> T:
            conn: sqlite3.Connection = local.conn
            return _translated(lambda: fn(conn))

        return await asyncio.get_running_loop().run_in_executor(self._executor, read)

    async def execute(self, sql: str, *args: SqlValue) -> int:
        raise StoreError("sqlite: writes must go through Store.transaction()")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # The reads under way finish first (their threads own the connections).
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        for conn in self._all:
            conn.close()


class SqliteStore(SqlReads):
    """``Store`` on one SQLite file. Open with ``await SqliteStore.open(path)``."""

    _reader: _ReaderPool

    def __init__(
        self, path: str, writer: _WriterConn, readers: _ReaderPool, temp_dir: str | None
    ) -> None:
        self.path = path
        self._writer = writer
        self._reader = readers
        self._dialect = SQLITE
        self._write_lock = asyncio.Lock()
        self._temp_dir = temp_dir
        self._closed = False

    @classmethod
    async def open(
        cls, path: str, *, readers: int = 4, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> SqliteStore:
        temp_dir: str | None = None
        if path == MEMORY:
            temp_dir = tempfile.mkdtemp(prefix="voicedock-sqlite-")
            path = str(Path(temp_dir) / "voicedock.db")
        else:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"sqlite: cannot create the database directory: {exc}") from exc
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicedock-sqlite-write")
        writer = _WriterConn(executor, busy_timeout_ms)
        read_conns: list[sqlite3.Connection] = []
        try:
            # busy_timeout 0: on the loop, a lock is never waited for (_begin_waiting, in the
            # thread, waits for it).
            writer.conn = await asyncio.get_running_loop().run_in_executor(
                executor, lambda: _translated(lambda: _connect(path, 0, read_only=False))
            )
            for _ in range(max(readers, 1)):
                read_conns.append(
                    await asyncio.to_thread(
                        _translated, lambda: _connect(path, busy_timeout_ms, read_only=True)
                    )
                )
        except BaseException:
            for conn in read_conns:
                conn.close()
            if writer.conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, writer.conn.close)
            executor.shutdown(wait=False)
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        return cls(path, writer, _ReaderPool(read_conns), temp_dir)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("sqlite: store is closed")

    async def migrate(self, migrations: Sequence[Migration] | None = None) -> None:
        """Apply this version's pending migrations (``migrations``: others, for a test) in
        one transaction; ``SchemaMismatch`` when the database is not this version's to run on
        or to migrate now (store/migrate.py)."""
        self._check_open()
        known = load_migrations("sqlite") if migrations is None else list(migrations)

        def apply(conn: sqlite3.Connection) -> None:
            _begin_waiting(conn, self._writer.busy_timeout_ms)
            try:
                conn.execute(CREATE_SCHEMA_MIGRATIONS)
                rows = conn.execute("SELECT * FROM schema_migrations").fetchall()
                for migration in pending(known, [dict(r) for r in rows]):
                    if migration.contract_after is not None:
                        check_contract(migration, _live_nodes(conn))
                    for statement in migration.statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES (?, ?, ?)",
                        (migration.version, migration.name, datetime.now(UTC).isoformat()),
                    )
                    if migration.contract_after is not None:
                        conn.execute(
                            "UPDATE schema_migrations SET contract_after = ? WHERE version = ?",
                            (migration.contract_after, migration.version),
                        )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        async with self._write_lock:
            await self._writer.submit(apply)

    @contextlib.asynccontextmanager
    async def _write_session(self, *, brief: bool = False) -> AsyncIterator[Conn]:
        """The writer connection inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error);
        ``brief``: its statements may run on the event loop (the module's docstring)."""
        self._check_open()
        async with self._write_lock:
            writer = self._writer
            writer.brief = brief
            try:
                writer.begin_due = True  # with the session's first statement
                yield writer
                await writer.execute("COMMIT")
            except BaseException:
                await writer.rollback()
                raise
            finally:
                writer.brief = False
            writer.committed()

    @contextlib.asynccontextmanager
    async def transaction(self, *, brief: bool = False) -> AsyncIterator[Transaction]:
        async with self._write_session(brief=brief) as conn:
            yield SqlTransaction(conn, SQLITE, NoLocks())

    def outbox(self, claimer: str = "") -> Outbox:
        # Claims need no lock: the single writer already runs them one at a time.
        return SqlOutbox(self._write_session, SQLITE, claim_lock=NoLocks(), claimer=claimer)

    def mailbox(self) -> None:
        return None  # one node: its commands never travel

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            conn = self._writer.conn

            def close(_: sqlite3.Connection) -> None:
                if conn is not None:
                    conn.close()
                self._writer.conn = None

            with contextlib.suppress(StoreError):
                await self._writer.submit(close)
            self._writer.shutdown()
        await self._reader.aclose()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)


__all__ = ["SqliteStore"]
