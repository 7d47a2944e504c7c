"""asyncpg's errors as the store's: a server (or the way to it) that is gone for now is
``StoreUnavailable`` (nothing was committed, the work may be retried on a new connection), and
so is a statement prepared before another node's migration changed what it returns (a column
added to a table read with ``SELECT *``: asyncpg has dropped its prepared statements, the retry
prepares them again — in a transaction it cannot retry by itself), a
unique violation ``DuplicateKeyError``, a deadlock the server broke or a serialization failure
``TransactionConflict``, anything else ``StoreError``. Shared by the PostgreSQL
store (``store.py``) and the nodes' mailbox (``mailbox.py``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import asyncpg

from voicedock.errors import StoreError, StoreUnavailable
from voicedock.store.errors import DuplicateKeyError, TransactionConflict

T = TypeVar("T")

# InternalClientError: a pooled connection left mid-operation by a lost server ("another
# operation is in progress"); it is dropped like a broken one and the work retried.
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)


# The server or the way to it is gone for now; the same work may succeed on a new connection.
_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.AdminShutdownError,  # 57P01: pg_terminate_backend, fast shutdown
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.CannotConnectNowError,  # 57P03: starting up, in recovery
    asyncpg.TooManyConnectionsError,  # 53300
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a standby, mid-failover
    asyncpg.ConnectionDoesNotExistError,  # the socket closed mid-operation
    asyncpg.InvalidCachedStatementError,  # the schema changed under a prepared statement
    asyncpg.OutdatedSchemaCacheError,  # a type changed under asyncpg's cache (reloaded)
    OSError,
    TimeoutError,
)


def translate(exc: BaseException) -> StoreError:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return DuplicateKeyError(f"postgres: {exc}")
    text = f"postgres: {type(exc).__name__}: {exc}"
    if isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)):
        return TransactionConflict(text)  # 40P01, 40001: rolled back, nothing committed
    if (
        isinstance(exc, _UNAVAILABLE)
        or (isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc))
        or (isinstance(exc, asyncpg.InternalClientError) and "in progress" in str(exc))
        or "not currently accepting connections" in str(exc)
    ):  # ALLOW_CONNECTIONS false
        return StoreUnavailable(text)
    return StoreError(text)


async def guarded(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except DRIVER_ERRORS as exc:
        raise translate(exc) from exc
