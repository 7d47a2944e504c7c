"""The records of ``Idempotency-Key`` requests: what a repeated request answers, until they
expire (``calls/outbound/idempotency.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from voicedock.domain.records import IdempotencyRecord


class IdempotencyWrites(Protocol):
    async def get_idempotency(self, organization_id: str, key: str) -> IdempotencyRecord | None: ...
    async def put_idempotency(self, record: IdempotencyRecord) -> None: ...
    async def delete_idempotency_before(self, cutoff: datetime) -> int:
        """Delete the records created at or before ``cutoff`` (expired); how many."""
        ...


__all__ = ["IdempotencyWrites"]
