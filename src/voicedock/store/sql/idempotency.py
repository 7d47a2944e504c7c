"""``Idempotency-Key`` records in SQL (both backends). ``get_idempotency`` takes the key's lock
(``Locks.lock_idempotency_key``: an advisory lock on PostgreSQL; SQLite's single writer
serializes anyway), so get-then-put is atomic across nodes."""

from __future__ import annotations

from datetime import datetime

from voicedock.domain.records import IdempotencyRecord
from voicedock.store.sql.base import TransactionPart
from voicedock.store.sql.rows import IDEMPOTENCY


class SqlIdempotencyWrites(TransactionPart):
    """Idempotency records inside an open transaction."""

    async def get_idempotency(self, organization_id: str, key: str) -> IdempotencyRecord | None:
        """Also serializes concurrent transactions on the same key until they commit, so
        get-then-put is atomic: the second request with a key sees the first one's record."""
        await self._locks.lock_idempotency_key(self._conn, organization_id, key)
        row = await self._conn.fetchrow(
            "SELECT * FROM idempotency WHERE organization_id = ? AND key = ?",
            organization_id,
            key,
        )
        return None if row is None else IDEMPOTENCY.decode(row, self._dialect)

    async def put_idempotency(self, record: IdempotencyRecord) -> None:
        """Insert; a record already stored under the key raises ``DuplicateKeyError``."""
        await self._insert(IDEMPOTENCY, record)

    async def delete_idempotency_before(self, cutoff: datetime) -> int:
        return await self._conn.execute(
            "DELETE FROM idempotency WHERE created_at <= ?", self._dialect.dt(cutoff)
        )


__all__ = ["SqlIdempotencyWrites"]
