"""voicedock.store: SQLite (embedded default) and PostgreSQL behind one ``Store`` interface.

store = await open_store("sqlite:///var/lib/voicedock/voicedock.db")
await store.migrate()
async with store.transaction() as tx:
    call = await tx.insert_call(call)
await store.aclose()
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from voicedock.errors import StoreError
from voicedock.store.base import CallPage, CallQuery, Store, Transaction
from voicedock.store.errors import DuplicateKeyError, TransactionConflict


async def open_store(url: str, *, connections: int | None = None) -> Store:
    """Open (not migrate) the store at ``url``; ``connections``: at most this many to a server
    database (default its pool's size; SQLite has one).

    ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (parent directories are
    created), ``sqlite:///:memory:`` (a private database deleted on ``aclose()``), or
    ``postgresql://user:password@host:port/db`` (also ``postgres://``). Driver failures raise
    ``StoreError``.
    """
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        if not rest.startswith("/"):
            raise StoreError("store url: expected sqlite:///<path>")
        path = unquote(urlsplit("sqlite://" + rest).path[1:])
        if not path:
            raise StoreError("store url: sqlite path is empty")
        from voicedock.store.sqlite import SqliteStore

        return await SqliteStore.open(path)
    if scheme in ("postgresql", "postgres"):
        from voicedock.store.postgres.store import PostgresStore

        if connections is not None:
            return await PostgresStore.open(url, min_size=1, max_size=connections)
        return await PostgresStore.open(url)
    raise StoreError(f"store url: unsupported scheme {scheme!r} (use sqlite or postgresql)")


__all__ = [
    "CallPage",
    "CallQuery",
    "DuplicateKeyError",
    "Store",
    "StoreError",
    "Transaction",
    "TransactionConflict",
    "open_store",
]
