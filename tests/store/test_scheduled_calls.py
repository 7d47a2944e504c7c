"""claim_scheduled_call: the due scheduled call first (of one organization when asked),
owned by the claiming node; on PostgreSQL two nodes (two connection pools) never claim one
call, and a claimed call that moved on is never claimed again. The organizations with due
calls, due first first, and each organization's calls waiting, counted. Scheduled calls are
not live calls: no node recovers them, no limit counts them, the retention leaves them."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest

from voicedock.domain.records import Call, CallStatus
from voicedock.store import Store, open_store
from voicedock.store.base import NumberChoice, ScheduledChoice, ScheduledWaiting

from .builders import at, insert_call, make_call, seed_number, seed_org

pytestmark = pytest.mark.unit


def scheduled(org_id: str, seconds: float, number_id: str | None = None) -> Call:
    call = make_call(org_id, status=CallStatus.SCHEDULED, number_id=number_id)
    return dataclasses.replace(
        call,
        assistant_phone=None,
        scheduled_at=at(seconds),
        latest_at=at(seconds + 3600),
        ring_timeout_seconds=20,
    )


async def test_the_due_call_first_owned_by_the_claimer(store: Store) -> None:
    org = await seed_org(store)
    later = await insert_call(store, scheduled(org.id, 30))
    first = await insert_call(store, scheduled(org.id, 5))
    async with store.transaction() as tx:
        assert (
            await tx.claim_scheduled_call("node-a", at(0), ScheduledChoice()) is None
        )  # none due yet
    async with store.transaction() as tx:
        claimed = await tx.claim_scheduled_call("node-a", at(10), ScheduledChoice())
    assert claimed is not None
    assert claimed.id == first.id
    assert claimed.owner_node == "node-a"
    assert claimed.scheduled_at == at(5)
    assert claimed.latest_at == at(3605)
    assert claimed.ring_timeout_seconds == 20
    stored = await store.get_call(None, first.id)
    assert stored is not None
    assert stored.owner_node == "node-a"
    assert stored.status is CallStatus.SCHEDULED  # the caller moves it on (or rolls back)
    async with store.transaction() as tx:  # the later one is not due
        again = await tx.claim_scheduled_call("node-a", at(10), ScheduledChoice())
        assert again is not None
        assert again.id == first.id
        await tx.update_call(dataclasses.replace(again, status=CallStatus.CONNECTING))
    async with store.transaction() as tx:
        assert await tx.claim_scheduled_call("node-b", at(10), ScheduledChoice()) is None
    async with store.transaction() as tx:
        last = await tx.claim_scheduled_call("node-b", at(31), ScheduledChoice())
        assert last is not None
        assert last.id == later.id


async def test_a_scheduled_call_is_no_live_call(store: Store) -> None:
    org = await seed_org(store)
    number = await seed_number(store, org.id, max_concurrent_calls=1)
    call = await insert_call(store, scheduled(org.id, 5, number_id=number.id))
    assert await store.list_active_calls() == []
    assert await store.count_active_calls(number.id) == 0
    async with store.transaction() as tx:
        assert await tx.take_unowned_calls("node-a") == []
        reserved = await tx.reserve_phone_number(NumberChoice(org.id, number.id), at(0))
        assert reserved is not None  # its number is free for an immediate call
    async with store.transaction() as tx:
        # Retention deletes ended calls only, however old a scheduled one is.
        assert await tx.delete_calls_ended_before(at(10_000_000), 100) == 0
    assert await store.get_call(None, call.id) is not None


@pytest.mark.postgres
async def test_two_nodes_never_claim_one_call(postgres_server: str) -> None:
    from pg_server import fresh_database

    dsn = await fresh_database(postgres_server)
    node_a, node_b = await open_store(dsn), await open_store(dsn)
    try:
        await node_a.migrate()
        org = await seed_org(node_a)
        one = await insert_call(node_a, scheduled(org.id, 1))
        two = await insert_call(node_a, scheduled(org.id, 2))
        a_holds = asyncio.Event()
        release = asyncio.Event()

        async def claim_and_dial(store: Store, node: str) -> str | None:
            async with store.transaction() as tx:
                claimed = await tx.claim_scheduled_call(node, at(10), ScheduledChoice())
                if node == "node-a":
                    a_holds.set()
                    await release.wait()  # holds its row while node-b claims
                if claimed is None:
                    return None
                await tx.update_call(dataclasses.replace(claimed, status=CallStatus.CONNECTING))
                return claimed.id

        first = asyncio.create_task(claim_and_dial(node_a, "node-a"))
        await a_holds.wait()
        async with asyncio.timeout(5):  # SKIP LOCKED: node-b does not wait for node-a's row
            second = await claim_and_dial(node_b, "node-b")
        release.set()
        assert {await first, second} == {one.id, two.id}
        assert await claim_and_dial(node_b, "node-b") is None  # both dialed: none is left
        calls = [await node_b.get_call(None, c.id) for c in (one, two)]
        owners = {c.id: c.owner_node for c in calls if c is not None}
        assert owners == {await first: "node-a", second: "node-b"}
    finally:
        await node_a.aclose()
        await node_b.aclose()


async def test_a_call_far_ahead_is_not_due(store: Store) -> None:
    org = await seed_org(store)
    far = dataclasses.replace(scheduled(org.id, 0), scheduled_at=at(0) + timedelta(days=30))
    await insert_call(store, far)
    async with store.transaction() as tx:
        assert (
            await tx.claim_scheduled_call("node-a", at(0) + timedelta(days=29), ScheduledChoice())
            is None
        )


async def test_the_organizations_take_turns_each_its_own_due_calls(store: Store) -> None:
    busy, other = await seed_org(store), await seed_org(store)
    backlog = [await insert_call(store, scheduled(busy.id, s)) for s in (1, 2, 3)]
    theirs = await insert_call(store, scheduled(other.id, 4))
    await insert_call(store, scheduled(other.id, 60))  # not due
    assert await store.scheduled_due_organizations(at(0)) == []
    # The organization whose call is due first first, each once.
    assert await store.scheduled_due_organizations(at(10)) == [busy.id, other.id]
    async with store.transaction() as tx:
        claimed = await tx.claim_scheduled_call("node-a", at(10), ScheduledChoice(other.id))
        assert claimed is not None
        assert claimed.id == theirs.id  # behind the other organization's three
        held = [c.id for c in backlog]
        assert (
            await tx.claim_scheduled_call("node-a", at(10), ScheduledChoice(busy.id, held)) is None
        )
        first = await tx.claim_scheduled_call("node-a", at(10), ScheduledChoice(busy.id))
        assert first is not None
        assert first.id == backlog[0].id


async def test_an_organizations_calls_waiting_are_counted(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    async with store.transaction() as tx:
        assert await tx.scheduled_waiting(org.id) == ScheduledWaiting(0, None)
    await insert_call(store, scheduled(org.id, 30))
    await insert_call(store, scheduled(org.id, 5))
    await insert_call(store, scheduled(other.id, 1))
    await insert_call(store, make_call(org.id))  # a call placed at once: not waiting
    async with store.transaction() as tx:
        await tx.lock_organization(org.id)
        assert await tx.scheduled_waiting(org.id) == ScheduledWaiting(2, at(5))
