"""Node leases and call ownership in the store (SQLite and PostgreSQL): a live node's calls are
never claimed, a dead node's calls are claimed by exactly one of several claimers at once."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import pytest

from store.builders import insert_call, make_call, seed_org
from voicedock.domain.records import Call, CallStatus, NodeLease
from voicedock.store import Store, open_store

pytestmark = pytest.mark.unit


def lease(node_id: str, now: datetime, seconds: float) -> NodeLease:
    return NodeLease(
        node_id, "host", 1, "", f"run-{node_id}", now, now + timedelta(seconds=seconds)
    )


async def owned_call(store: Store, org_id: str, owner: str | None) -> Call:
    call = dataclasses.replace(make_call(org_id, status=CallStatus.IN_PROGRESS), owner_node=owner)
    return await insert_call(store, call)


async def clock(store: Store) -> datetime:
    async with store.transaction() as tx:
        return await tx.clock()


async def test_a_live_nodes_calls_stay_its_own_and_a_dead_nodes_go_to_the_claimer(
    store: Store,
) -> None:
    org = await seed_org(store)
    now = await clock(store)
    async with store.transaction() as tx:
        await tx.put_node(lease("alive", now, 60))
        await tx.put_node(lease("dead", now, -1))  # its lease ran out a second ago
        await tx.put_node(lease("claimer", now, 60))
    alive = await owned_call(store, org.id, "alive")
    dead = await owned_call(store, org.id, "dead")
    ended = dataclasses.replace(make_call(org.id, status=CallStatus.ENDED), owner_node="dead")
    await insert_call(store, ended)
    assert [c.id for c in await store.list_active_calls("alive")] == [alive.id]

    async with store.transaction() as tx:
        claimed = await tx.claim_lost_calls("claimer", await tx.clock())
    assert [(c.id, c.owner_node) for c in claimed] == [(dead.id, "claimer")]
    assert [n.id for n in await store.list_nodes()] == ["alive", "claimer"]
    stored = await store.get_call(None, alive.id)
    assert stored is not None
    assert stored.owner_node == "alive"
    async with store.transaction() as tx:  # nothing left to claim
        assert await tx.claim_lost_calls("claimer", await tx.clock()) == []

    # A stale copy written back does not hand the claimed call back to the dead node.
    async with store.transaction() as tx:
        stale = dataclasses.replace(dead, summary="x")
        await tx.update_call(stale)
    again = await store.get_call(None, dead.id)
    assert again is not None
    assert (again.owner_node, again.summary) == ("claimer", "x")


async def test_calls_without_an_owner_are_taken_by_the_next_node_to_start(store: Store) -> None:
    org = await seed_org(store)
    legacy = await owned_call(store, org.id, None)  # stored before nodes were known
    async with store.transaction() as tx:
        taken = await tx.take_unowned_calls("first")
    assert [(c.id, c.owner_node) for c in taken] == [(legacy.id, "first")]
    assert [c.id for c in await store.list_active_calls("first")] == [legacy.id]


async def test_a_lease_renews_only_for_its_own_run(store: Store) -> None:
    now = await clock(store)
    async with store.transaction() as tx:
        await tx.put_node(lease("a", now, 5))
        assert await tx.renew_node("a", "run-a", now + timedelta(seconds=30)) is False
        assert await tx.renew_node("a", "another-run", now + timedelta(seconds=60)) is None
        assert await tx.renew_node("gone", "run-gone", now) is None
        assert not await tx.delete_node("a", "another-run")
    (row,) = await store.list_nodes()
    assert row.lease_until == now + timedelta(seconds=30)
    async with store.transaction() as tx:
        assert await tx.delete_node("a", "run-a")
    assert await store.list_nodes() == []


async def test_a_node_drains_when_it_says_so_or_when_asked_and_stays_draining(
    store: Store,
) -> None:
    now = await clock(store)
    async with store.transaction() as tx:
        await tx.put_node(lease("a", now, 5))
        await tx.put_node(lease("b", now, 5))
        assert await tx.renew_node("a", "run-a", now + timedelta(seconds=30)) is False
        assert await tx.renew_node("a", "run-a", now, draining=True) is True  # it drains
        assert await tx.renew_node("a", "run-a", now + timedelta(seconds=30)) is True  # for good
        asked = await tx.drain_node("b")  # voicedock nodes drain
        assert asked is not None
        assert (asked.id, asked.draining) == ("b", True)
        assert await tx.renew_node("b", "run-b", now + timedelta(seconds=30)) is True
        assert await tx.drain_node("nobody") is None
    assert [(n.id, n.draining) for n in await store.list_nodes()] == [("a", True), ("b", True)]
    async with store.transaction() as tx:  # a new run of the node serves again
        await tx.put_node(lease("a", now, 5))
    assert [(n.id, n.draining) for n in await store.list_nodes()] == [("a", False), ("b", True)]


@pytest.mark.postgres
async def test_several_survivors_claim_each_lost_call_exactly_once(postgres_dsn: str) -> None:
    """Three survivors, each with its own connection pool (as three processes), claim at
    once on PostgreSQL: every call of the dead node is claimed, none twice. (SQLite's one
    writer serializes claims by construction.)"""
    store = await open_store(postgres_dsn)
    try:
        await store.migrate()
        await claim_at_once(store, postgres_dsn)
    finally:
        await store.aclose()


async def claim_at_once(store: Store, store_url: str) -> None:
    org = await seed_org(store)
    now = await clock(store)
    survivors = ["b", "c", "d"]
    async with store.transaction() as tx:
        await tx.put_node(lease("dead", now, -1))
        for name in survivors:
            await tx.put_node(lease(name, now, 60))
    lost = {(await owned_call(store, org.id, "dead")).id for _ in range(30)}
    stores = [await open_store(store_url) for _ in survivors]
    try:
        start = asyncio.Event()

        async def claim(node_store: Store, name: str) -> list[str]:
            await start.wait()
            async with node_store.transaction() as tx:
                return [c.id for c in await tx.claim_lost_calls(name, await tx.clock())]

        tasks = [asyncio.create_task(claim(s, n)) for s, n in zip(stores, survivors, strict=True)]
        await asyncio.sleep(0.05)
        start.set()
        results = await asyncio.gather(*tasks)
    finally:
        for node_store in stores:
            await node_store.aclose()
    claimed = [call_id for result in results for call_id in result]
    assert sorted(claimed) == sorted(lost)  # all of them, each once
    for call_id in lost:
        call = await store.get_call(None, call_id)
        assert call is not None
        assert call.owner_node in survivors
