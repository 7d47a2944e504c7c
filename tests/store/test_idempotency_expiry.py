"""Idempotency records expire: ``delete_idempotency_before`` removes exactly the old ones."""

from __future__ import annotations

from datetime import timedelta

import pytest

from voicedock.domain.records import IdempotencyRecord
from voicedock.store import Store

from .builders import at, seed_org

pytestmark = pytest.mark.unit


def record(org_id: str, key: str, seconds: float) -> IdempotencyRecord:
    return IdempotencyRecord(org_id, key, "h", 200, {"call_id": key}, created_at=at(seconds))


async def test_delete_before_removes_only_records_at_or_before_the_cutoff(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    async with store.transaction() as tx:
        await tx.put_idempotency(record(org.id, "old", 0))
        await tx.put_idempotency(record(other.id, "old-too", 10))
        await tx.put_idempotency(record(org.id, "edge", 100))
        await tx.put_idempotency(record(org.id, "fresh", 100.001))
    async with store.transaction() as tx:
        assert await tx.delete_idempotency_before(at(100)) == 3
    async with store.transaction() as tx:
        assert await tx.get_idempotency(org.id, "old") is None
        assert await tx.get_idempotency(other.id, "old-too") is None
        assert await tx.get_idempotency(org.id, "edge") is None
        assert await tx.get_idempotency(org.id, "fresh") is not None
        assert await tx.delete_idempotency_before(at(100)) == 0
        # the key is free again: a new record under it is a new request
        await tx.put_idempotency(record(org.id, "old", 100 + timedelta(days=1).total_seconds()))
