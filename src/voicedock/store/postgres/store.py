"""PostgreSQL backend, for several service nodes sharing one database.

A transaction is a pool connection inside ``conn.transaction()`` (READ COMMITTED). Where two
nodes could race, rows are locked: ``reserve_phone_number`` locks the candidate
``phone_numbers`` rows (``FOR UPDATE``, in id order so lockers never deadlock) before counting
active calls, and ``get_idempotency`` takes a transaction-scoped advisory lock on the key (so do
webhook claims, on one key for all, and the count of an organization's open event streams).
Reads outside a transaction use the pool directly.

A lost connection (``pg_terminate_backend``, a server restart, a failover), a server that is
shutting down or not yet accepting connections, and a read-only server (a standby during a
failover) are ``StoreUnavailable``: nothing was committed and the work may be retried. (A
connection lost during ``COMMIT`` cannot tell; the engine's writes are idempotent transitions.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import re
import warnings
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import asyncpg

from voicedock.backoff import Backoff
from voicedock.errors import StoreError, StoreUnavailable
from voicedock.store.base import NodeMailbox, Transaction
from voicedock.store.migrate import (
    Migration,
    check_contract,
    load_migrations,
    pending,
)
from voicedock.store.postgres.asyncpg_errors import DRIVER_ERRORS, guarded, translate
from voicedock.store.postgres.mailbox import PostgresMailbox
from voicedock.store.sql.conn import Conn, Row, SqlValue
from voicedock.store.sql.outbox import SqlOutbox
from voicedock.store.sql.reads import SqlReads
from voicedock.store.sql.rows import POSTGRES
from voicedock.store.sql.transaction import SqlTransaction

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from voicedock.domain.webhooks import Outbox

    _PgConnection: TypeAlias = PoolConnectionProxy[asyncpg.Record]

T = TypeVar("T")

log = logging.getLogger("voicedock.store")

# A schema change waits at most this long for its table's lock, then rolls back and tries again
# a moment later. PostgreSQL queues lock requests in order: an ALTER TABLE waiting behind one
# long transaction would hold up every later query on that table — the calls of every node, in
# the middle of a rolling upgrade — for as long as it waits.
MIGRATION_LOCK_TIMEOUT_MS = 2_000
MIGRATION_LOCK_ATTEMPTS = 30  # about two minutes with the waits between them

_PLACEHOLDER = re.compile(r"\?")
# One key for "this node is migrating": other nodes wait instead of racing on DDL.
_MIGRATION_LOCK_KEY = 0x766F_6963_6564_6F63  # "voicedoc"
_MIGRATION_LOCK_POLL_S = 0.1  # how often a node waiting to migrate tries the lock
# One key for "the node table changes": joins, leaves and claims of lost calls take turns.
_NODES_LOCK_KEY = 0x766F_6963_6E6F_6465  # "voicnode"
# One key for "webhook deliveries are being claimed": each claim counts what the others leased.
_WEBHOOK_CLAIMS_LOCK_KEY = 0x766F_6963_686F_6F6B  # "voichook"


@functools.lru_cache(maxsize=512)
def to_numbered(sql: str) -> str:
    """``?`` placeholders → ``$1, $2, ...`` (the shared SQL never has ``?`` in literals)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class PoolDeadlockWarning(RuntimeWarning):
    """A task holding a transaction open asked the pool for another connection."""


class _Held:
    """A transaction a task holds open on one of ``pool``'s connections."""

    __slots__ = ("open", "pool")

    def __init__(self, pool: object) -> None:
        self.pool = pool
        self.open = True


# The transaction the running task holds open. While it is, the task must not ask the pool for
# another connection (a store read, a second transaction): with every other connection held by
# transactions waiting for this one's row locks (placements of one organization, each locking
# its phone numbers), none is ever free, and all of them wait for ever. Such a request is
# warned of (``PoolDeadlockWarning``: an error in the tests, which make warnings errors).
_HELD: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("voicedock_pg_held")


async def _nothing_to_undo(_conn: object) -> None:
    """What a connection given back to the pool is reset with: nothing beyond asyncpg's own
    (an open transaction rolled back). The store leaves no session state on a pooled
    connection: its locks and settings are its transactions' (``pg_advisory_xact_lock``, ``SET
    LOCAL``), the mailbox listens on a connection of its own, and the one session lock
    (``migrate``'s) is released by ``migrate``, its connection closed where that fails.
    asyncpg's default (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) is a
    round trip to the server on every release: a read held its connection for two, and the
    event loop resumed it twice."""


def _check_not_holding(pool: object, what: str) -> None:
    held = _HELD.get(None)
    if held is not None and held.open and held.pool is pool:
        warnings.warn(
            f"postgres: {what} while this task holds a transaction open: a second pool "
            "connection (a deadlock when the pool runs out); use the transaction",
            PoolDeadlockWarning,
            stacklevel=3,
        )


def _rowcount(status: str) -> int:
    # asyncpg returns the command tag, e.g. "UPDATE 1", "DELETE 0", "INSERT 0 1".
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _AsyncpgConn:
    """``Conn`` on asyncpg: one acquired connection inside a transaction, or (reads) the pool,
    each statement on whichever of its connections is free."""

    def __init__(self, target: _PgConnection | asyncpg.Pool, *, writes: bool) -> None:
        self._target = target
        self._writes = writes

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        if not self._writes:
            _check_not_holding(self._target, "a read on the pool")
        rows = await guarded(self._target.fetch(to_numbered(sql), *args))
        return [dict(r) for r in rows]

    async def fetchrow(self, sql: str, *args: SqlValue) -> Row | None:
        if not self._writes:
            _check_not_holding(self._target, "a read on the pool")
        row = await guarded(self._target.fetchrow(to_numbered(sql), *args))
        return None if row is None else dict(row)

    async def execute(self, sql: str, *args: SqlValue) -> int:
        if not self._writes:
            raise StoreError("postgres: writes must go through Store.transaction()")
        return _rowcount(await guarded(self._target.execute(to_numbered(sql), *args)))


class PostgresLocks:
    async def lock_phone_numbers(
        self, conn: Conn, organization_id: str, number_id: str | None
    ) -> None:
        sql = "SELECT id FROM phone_numbers WHERE organization_id = ?"
        args: list[SqlValue] = [organization_id]
        if number_id is not None:
            sql += " AND id = ?"
            args.append(number_id)
        await conn.fetch(sql + " ORDER BY id FOR UPDATE", *args)

    async def lock_idempotency_key(self, conn: Conn, organization_id: str, key: str) -> None:
        await conn.fetch(
            "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
            f"idempotency\x1f{organization_id}\x1f{key}",
        )

    async def lock_nodes(self, conn: Conn) -> None:
        await conn.fetch("SELECT pg_advisory_xact_lock(?)", _NODES_LOCK_KEY)

    async def lock_webhook_claims(self, conn: Conn) -> None:
        await conn.fetch("SELECT pg_advisory_xact_lock(?)", _WEBHOOK_CLAIMS_LOCK_KEY)

    async def lock_event_streams(self, conn: Conn, organization_id: str) -> None:
        await conn.fetch(
            "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
            f"event-streams\x1f{organization_id}",
        )


async def _whole(step: Awaitable[T]) -> T:
    """``step`` (a transaction's BEGIN, COMMIT or ROLLBACK) run to its end even when the task
    awaiting it is cancelled meanwhile, then the cancellation raised: a shutdown cancels its
    tasks, at times more than once, and a connection given back to the pool in the middle of
    one would still hold its transaction (asyncpg resets it, saying so at error level)."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise  # the step itself was cancelled
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


async def _record(conn: _PgConnection, migration: Migration) -> None:
    """The migration applied, in ``schema_migrations`` (a contract step with what it needs)."""
    await guarded(
        conn.execute(
            "INSERT INTO schema_migrations (version, name, contract_after) VALUES ($1, $2, $3)",
            migration.version,
            migration.name,
            migration.contract_after,
        )
        if migration.contract_after is not None
        else conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            migration.version,
            migration.name,
        )
    )


async def _apply_in_turn(conn: _PgConnection, migration: Migration) -> None:
    """``migration`` in one transaction whose locks are each waited for at most
    ``MIGRATION_LOCK_TIMEOUT_MS`` (then it rolls back, lets the queries queued behind it run,
    and tries again); ``StoreUnavailable`` when the tables stay held through every attempt."""
    backoff = Backoff(initial=0.5, cap=5.0)
    for attempt in range(1, MIGRATION_LOCK_ATTEMPTS + 1):
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL lock_timeout = {MIGRATION_LOCK_TIMEOUT_MS}")
                await conn.execute(migration.sql)  # simple protocol: many statements
                await _record(conn, migration)
        except asyncpg.LockNotAvailableError as exc:  # 55P03: the lock_timeout passed
            if attempt == MIGRATION_LOCK_ATTEMPTS:
                raise StoreUnavailable(
                    f"postgres: migration {migration.version} could not lock its tables in "
                    f"{attempt} attempts (a transaction holds them): {exc}"
                ) from exc
            log.warning(
                "migration %d waits for a table a transaction holds (attempt %d of %d)",
                migration.version,
                attempt,
                MIGRATION_LOCK_ATTEMPTS,
            )
        except DRIVER_ERRORS as exc:
            raise translate(exc) from exc
        else:
            return
        await asyncio.sleep(backoff.next_delay())


class PostgresStore(SqlReads):
    """``Store`` on a PostgreSQL database. Open with ``await PostgresStore.open(dsn)``."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn  # for the connection that listens for other nodes' commands
        self._reader = _AsyncpgConn(pool, writes=False)
        self._dialect = POSTGRES
        self._locks = PostgresLocks()
        self._closed = False

    @classmethod
    async def open(
        cls, dsn: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 10.0
    ) -> PostgresStore:
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                reset=_nothing_to_undo,
            )
        except (*DRIVER_ERRORS, ValueError) as exc:
            raise StoreError(f"postgres: cannot connect: {type(exc).__name__}: {exc}") from exc
        return cls(pool, dsn)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("postgres: store is closed")

    async def migrate(self, migrations: Sequence[Migration] | None = None) -> None:
        """Apply this version's pending migrations (``migrations``: others, for a test), each
        in a transaction of its own (one that builds indexes ``CONCURRENTLY`` statement by
        statement, outside one), under a session lock other nodes starting wait for;
        ``SchemaMismatch`` when the database is not this version's to run on or to migrate
        now (store/migrate.py)."""
        self._check_open()
        known = load_migrations("postgres") if migrations is None else list(migrations)
        async with self._connection() as conn:
            # Tried in turn rather than waited for in one statement: a node blocked in
            # pg_advisory_lock holds a snapshot that an index built CONCURRENTLY by the node
            # migrating waits out, while that node holds the lock: a deadlock.
            lock = "SELECT pg_try_advisory_lock($1)"
            while True:
                if await guarded(conn.fetchval(lock, _MIGRATION_LOCK_KEY)):
                    break
                await asyncio.sleep(_MIGRATION_LOCK_POLL_S)
            try:
                await guarded(
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY"
                        " KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
                    )
                )
                rows = await guarded(conn.fetch("SELECT * FROM schema_migrations"))
                for migration in pending(known, [dict(r) for r in rows]):
                    await self._apply(conn, migration)
            finally:
                try:
                    await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_KEY)
                except DRIVER_ERRORS:  # the lock goes with the session, never to the pool
                    with contextlib.suppress(asyncpg.InterfaceError):
                        conn.terminate()

    async def _apply(self, conn: _PgConnection, migration: Migration) -> None:
        if migration.contract_after is not None:
            rows = await guarded(
                conn.fetch("SELECT * FROM nodes WHERE lease_until > clock_timestamp()")
            )
            check_contract(migration, [dict(r) for r in rows])
        if not migration.concurrent:
            await _apply_in_turn(conn, migration)
            return
        # An index built CONCURRENTLY by an attempt that failed is left invalid, and
        # IF NOT EXISTS would keep it: it goes first.
        invalid = await guarded(
            conn.fetch(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE NOT i.indisvalid AND c.relname = ANY($1::text[])",
                migration.concurrent_indexes,
            )
        )
        for row in invalid:
            await guarded(conn.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{row["relname"]}"'))
        for statement in migration.statements:
            await guarded(conn.execute(statement))
        await _record(conn, migration)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[_PgConnection]:
        try:
            conn = await self._pool.acquire()
        except DRIVER_ERRORS as exc:
            # No connection to be had (refused, not accepting connections, failing over).
            translated = translate(exc)
            if type(translated) is StoreError:
                translated = StoreUnavailable(str(translated))
            raise translated from exc
        try:
            yield conn
        except StoreUnavailable:
            # A connection that broke mid-operation is not handed out again: the pool opens
            # a fresh one for the retry.
            with contextlib.suppress(asyncpg.InterfaceError):  # the pool already let it go
                conn.terminate()
            raise
        finally:
            with contextlib.suppress(*DRIVER_ERRORS):
                await self._pool.release(conn)

    @contextlib.asynccontextmanager
    async def _in_transaction(self) -> AsyncIterator[_PgConnection]:
        """A pool connection inside a transaction (committed, or rolled back on error)."""
        self._check_open()
        _check_not_holding(self._pool, "a second transaction")
        async with self._connection() as conn:
            tx = conn.transaction()
            held = _Held(self._pool)
            token = _HELD.set(held)
            try:
                await guarded(_whole(tx.start()))
                yield conn
            except BaseException:  # a BEGIN cancelled after it ran included
                with contextlib.suppress(*DRIVER_ERRORS):
                    await _whole(tx.rollback())
                raise
            finally:
                held.open = False
                _HELD.reset(token)
            await guarded(_whole(tx.commit()))

    @contextlib.asynccontextmanager
    async def _write_session(self, *, brief: bool = False) -> AsyncIterator[Conn]:
        async with self._in_transaction() as conn:
            yield _AsyncpgConn(conn, writes=True)

    @contextlib.asynccontextmanager
    async def transaction(self, *, brief: bool = False) -> AsyncIterator[Transaction]:
        async with self._write_session() as conn:
            yield SqlTransaction(conn, POSTGRES, self._locks)

    def outbox(self, claimer: str = "") -> Outbox:
        # Every node's claims take turns on an advisory lock (store/sql/outbox.py).
        return SqlOutbox(self._write_session, POSTGRES, claim_lock=self._locks, claimer=claimer)

    def mailbox(self) -> NodeMailbox:
        return PostgresMailbox(self._pool, self._dsn)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            # Connections still checked out get this long to be released, then are cut.
            async with asyncio.timeout(10):
                await self._pool.close()
        except (TimeoutError, *DRIVER_ERRORS):
            self._pool.terminate()


__all__ = ["PostgresStore", "to_numbered"]
