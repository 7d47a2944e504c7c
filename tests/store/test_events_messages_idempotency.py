"""Call events and messages keep their order; idempotency records per organization."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.domain.records import CallEvent, CallMessage, IdempotencyRecord
from voicedock.store import DuplicateKeyError, Store

from .builders import at, insert_call, make_call, seed_org

pytestmark = pytest.mark.unit


async def test_events_in_order_with_cursor(store: Store) -> None:
    org = await seed_org(store)
    call = await insert_call(store, make_call(org.id))
    other = await insert_call(store, make_call(org.id))
    stored: list[CallEvent] = []
    async with store.transaction() as tx:
        for i in range(4):
            stored.append(
                await tx.add_event(
                    CallEvent(call_id=call.id, type="status", data={"i": i}, created_at=at(i))
                )
            )
            await tx.add_event(CallEvent(call_id=other.id, type="pbx", data={}))
    assert [e.seq for e in stored] == sorted(e.seq for e in stored)
    assert await store.list_events(call.id) == stored
    assert await store.list_events(call.id, after_seq=stored[1].seq) == stored[2:]
    assert await store.list_events(call.id, after_seq=stored[-1].seq) == []
    assert [e.data for e in await store.list_events(call.id)] == [{"i": i} for i in range(4)]


async def test_messages_in_order_with_all_fields(store: Store) -> None:
    org = await seed_org(store)
    call = await insert_call(store, make_call(org.id))
    async with store.transaction() as tx:
        first = await tx.add_message(
            CallMessage(call_id=call.id, role="assistant", content="Hello", started_at=at(1))
        )
        second = await tx.add_message(
            CallMessage(
                call_id=call.id,
                role="user",
                content="Hi, I need…",
                started_at=at(2),
                ended_at=at(3),
                interrupted=True,
            )
        )
    assert 0 < first.seq < second.seq
    assert await store.list_messages(call.id) == [first, second]
    assert await store.list_messages("other") == []


async def test_event_for_unknown_call_is_rejected(store: Store) -> None:
    from voicedock.store import StoreError

    with pytest.raises(StoreError):
        async with store.transaction() as tx:
            await tx.add_event(CallEvent(call_id="missing", type="status", data={}))


async def test_idempotency_records_are_per_organization(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    record = IdempotencyRecord(
        organization_id=org.id,
        key="req-1",
        request_hash="h1",
        response_status=201,
        response_body={"id": "call_1", "status": "connecting"},
        created_at=at(0),
    )
    async with store.transaction() as tx:
        assert await tx.get_idempotency(org.id, "req-1") is None
        await tx.put_idempotency(record)
    async with store.transaction() as tx:
        assert await tx.get_idempotency(org.id, "req-1") == record
        assert await tx.get_idempotency(other.id, "req-1") is None
    with pytest.raises(DuplicateKeyError):
        async with store.transaction() as tx:
            await tx.put_idempotency(record)


async def test_concurrent_requests_with_one_key_store_once(store: Store) -> None:
    """get-then-put inside a transaction is atomic: later requests see the first record."""
    org = await seed_org(store)

    async def request(n: int) -> str:
        async with store.transaction() as tx:
            existing = await tx.get_idempotency(org.id, "same-key")
            if existing is not None:
                return "replayed"
            await asyncio.sleep(0.01)  # widen the race window
            await tx.put_idempotency(
                IdempotencyRecord(
                    organization_id=org.id,
                    key="same-key",
                    request_hash=f"h{n}",
                    response_status=201,
                    response_body={"n": n},
                )
            )
            return "stored"

    outcomes = await asyncio.gather(*(request(n) for n in range(8)))
    assert sorted(outcomes) == ["replayed"] * 7 + ["stored"]
