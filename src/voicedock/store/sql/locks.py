"""The serialization a backend adds to its transactions where nodes sharing the database could
race: row locks and advisory locks on PostgreSQL (``store/postgres/store.py``), nothing on
SQLite, whose single writer already runs transactions one at a time (``NoLocks``)."""

from __future__ import annotations

from typing import Protocol

from voicedock.store.sql.conn import Conn


class ClaimLock(Protocol):
    async def lock_webhook_claims(self, conn: Conn) -> None:
        """Until the transaction ends, no other claim of webhook deliveries runs (any node)."""
        ...


class StreamLock(Protocol):
    async def lock_event_streams(self, conn: Conn, organization_id: str) -> None:
        """Until the transaction ends, no other transaction counts or opens the
        organization's event streams (any node)."""
        ...


class Locks(ClaimLock, StreamLock, Protocol):
    """Serialization a backend needs on top of its transactions (no-ops for SQLite)."""

    async def lock_phone_numbers(
        self, conn: Conn, organization_id: str, number_id: str | None
    ) -> None: ...
    async def lock_idempotency_key(self, conn: Conn, organization_id: str, key: str) -> None: ...
    async def lock_nodes(self, conn: Conn) -> None:
        """Until the transaction ends, no other node joins, leaves or claims calls."""
        ...


class NoLocks:
    """For a backend whose write transactions already exclude each other."""

    async def lock_phone_numbers(
        self, conn: Conn, organization_id: str, number_id: str | None
    ) -> None:
        return None

    async def lock_idempotency_key(self, conn: Conn, organization_id: str, key: str) -> None:
        return None

    async def lock_nodes(self, conn: Conn) -> None:
        return None

    async def lock_webhook_claims(self, conn: Conn) -> None:
        return None

    async def lock_event_streams(self, conn: Conn, organization_id: str) -> None:
        return None


__all__ = ["ClaimLock", "Locks", "NoLocks", "StreamLock"]
