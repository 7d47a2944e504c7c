"""Several nodes on one database (``calls/nodes/lease.py``), in one process over a fake PBX whose
legs outlive a node: a starting node leaves a live node's calls alone; a node that stops renewing
its lease has its calls hung up and ended ``node-lost`` by exactly one survivor, with one
end-of-call report; SQLite refuses a second node, and no database two nodes of one id."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from calls.test_recovery import LeftoverFakePbx, PbxLegs, cut_off, place
from fakes.world import ACME, make_settings
from pg_server import fresh_database
from voicedock.calls.transitions import NODE_LOST
from voicedock.config import Settings, WebhookEndpointSettings
from voicedock.domain.records import CallStatus
from voicedock.domain.webhooks import generate_secret
from voicedock.errors import ConfigError
from voicedock.pbx.base import PbxEventKind
from voicedock.service import Service
from voicedock.store import Store, open_store
from voicedock.store.postgres.store import PoolDeadlockWarning
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

LEASE = 3  # seconds: the shortest allowed, renewed every second


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(generate_secret())
    await receiver.start()
    yield receiver
    await receiver.stop()


def node_settings(database_url: str, node_id: str, receiver: Receiver | None = None) -> Settings:
    settings = make_settings(database_url)
    settings.node.id = node_id
    settings.node.lease_seconds = LEASE
    for number in settings.numbers:
        number.max_concurrent_calls = 4
    if receiver is not None:
        settings.egress.allow_loopback = True
        settings.webhooks.endpoints = [
            WebhookEndpointSettings(
                name="crm", organization=ACME, url=receiver.url, secret=receiver.secret
            )
        ]
    return settings


def reports(receiver: Receiver, call_id: str) -> int:
    bodies = [json.loads(r.body) for r in receiver.requests]
    return sum(b["type"] == "end-of-call-report" and b["call_id"] == call_id for b in bodies)


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_a_dead_nodes_calls_end_node_lost_once_and_a_new_node_leaves_live_ones_alone(
    postgres_server: str, receiver: Receiver
) -> None:
    dsn = await fresh_database(postgres_server)
    world = PbxLegs()
    a_pbx = LeftoverFakePbx(world)
    a = await Service.open(node_settings(dsn, "a", receiver), pbx=a_pbx)
    survivors: list[Service] = []
    try:
        answered, ringing = await place(a.engine), await place(a.engine)
        await a_pbx.answer(answered)
        b_pbx, c_pbx = LeftoverFakePbx(world), LeftoverFakePbx(world)
        for node_id, pbx in (("b", b_pbx), ("c", c_pbx)):
            survivors.append(await Service.open(node_settings(dsn, node_id, receiver), pbx=pbx))
        b = survivors[0]

        # Two more nodes started: node a's calls are untouched, their legs up.
        assert b_pbx.asked == c_pbx.asked == []
        assert {answered, ringing} <= world.legs
        for call_id, status in ((answered, CallStatus.IN_PROGRESS), (ringing, "connecting")):
            call = await b.store.get_call(None, call_id)
            assert call is not None
            assert (call.status, call.owner_node, call.end_reason) == (status, "a", None)
        assert sorted(n.id for n in await b.store.list_nodes()) == ["a", "b", "c"]

        # Node a loses the database (as if killed): its lease is no longer renewed.
        await cut_off(a)
        loop = asyncio.get_running_loop()
        lost_at = loop.time()

        async def settled() -> bool:
            calls = [await b.store.get_call(None, c) for c in (answered, ringing)]
            return all(c is not None and c.status.terminal for c in calls)

        async with asyncio.timeout(LEASE + 10):
            while not await settled():
                await asyncio.sleep(0.05)
        # Expired after LEASE, seen at the next renewal (a third of it), then hung up.
        assert loop.time() - lost_at < LEASE + 2 * LEASE / 3 + 2
        for call_id, started in ((answered, True), (ringing, False)):
            call = await b.store.get_call(None, call_id)
            assert call is not None
            assert (call.status, call.end_reason, call.error) == (CallStatus.ENDED, NODE_LOST, None)
            assert (call.started_at is not None) is started
            assert call.owner_node in ("b", "c")
        assert not {answered, ringing} & world.legs  # hung up at the PBX
        # Exactly one survivor hung them up, and one end-of-call report each.
        asked = [calls for pbx in (b_pbx, c_pbx) for calls in pbx.asked]
        assert sorted(call_id for calls in asked for call_id in calls) == sorted(
            [answered, ringing]
        )
        await wait_until(lambda: reports(receiver, answered) and reports(receiver, ringing), 10)
        await asyncio.sleep(2 * LEASE / 3)  # further renewals by both survivors
        assert (reports(receiver, answered), reports(receiver, ringing)) == (1, 1)
        assert sorted(n.id for n in await b.store.list_nodes()) == ["b", "c"]
    finally:
        for service in (*survivors, a):
            await service.aclose()


@pytest.mark.postgres
async def test_a_second_process_with_the_same_node_id_is_refused(postgres_server: str) -> None:
    dsn = await fresh_database(postgres_server)
    async with await Service.open(node_settings(dsn, "same"), pbx=LeftoverFakePbx(PbxLegs())):
        with pytest.raises(ConfigError, match=r"node\.id: node 'same' is already running"):
            await Service.open(node_settings(dsn, "same"), pbx=LeftoverFakePbx(PbxLegs()))
    # Once it stopped (its lease released), the id is free again.
    async with await Service.open(node_settings(dsn, "same"), pbx=LeftoverFakePbx(PbxLegs())):
        pass


@pytest.mark.postgres
async def test_nodes_starting_together_on_a_fresh_database_both_start(
    postgres_server: str,
) -> None:
    dsn = await fresh_database(postgres_server)
    opening = [
        Service.open(node_settings(dsn, node), pbx=LeftoverFakePbx(PbxLegs())) for node in "ab"
    ]
    services = await asyncio.gather(*opening, return_exceptions=True)
    try:
        assert [type(s) for s in services] == [Service, Service], services
        a = services[0]
        assert isinstance(a, Service)
        assert sorted(n.id for n in await a.store.list_nodes()) == ["a", "b"]
    finally:
        for service in services:
            if isinstance(service, Service):
                await service.aclose()


@pytest.mark.timeout(30)
async def test_sqlite_refuses_a_second_node_and_its_calls_stay_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'one.db'}"
    world = PbxLegs()
    first_pbx = LeftoverFakePbx(world)
    async with await Service.open(node_settings(url, "first"), pbx=first_pbx) as first:
        call_id = await place(first.engine)
        await first_pbx.answer(call_id)
        second_pbx = LeftoverFakePbx(world)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(ConfigError, match="SQLite database serves one voicedock node") as err:
            await Service.open(node_settings(url, "second"), pbx=second_pbx)
        assert "node 'first' is running on it" in str(err.value)
        # Refused as soon as the first node renewed its lease (every LEASE/3 s).
        assert loop.time() - began < LEASE
        assert second_pbx.asked == []
        assert call_id in world.legs
        call = await first.store.get_call(None, call_id)
        assert call is not None
        assert call.status is CallStatus.IN_PROGRESS
        assert [n.id for n in await first.store.list_nodes()] == ["first"]


async def test_a_node_id_must_be_a_token() -> None:
    from voicedock.config import load_settings

    with pytest.raises(ConfigError, match=r"node\.id"):
        load_settings(environ={"VOICEDOCK_NODE__ID": "a b;c"})
    with pytest.raises(ConfigError, match=r"node\.lease_seconds"):
        load_settings(environ={"VOICEDOCK_NODE__LEASE_SECONDS": "1"})
    default = load_settings(environ={})
    assert default.node.id
    assert default.node.lease_seconds == 10


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = await open_store(url)
    try:
        yield store
    finally:
        await store.aclose()


async def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = await asyncio.create_subprocess_exec("true")
    await process.wait()
    return process.pid


@pytest.mark.timeout(30)
async def test_a_lease_whose_process_is_gone_does_not_hold_a_restart_up(tmp_path: Path) -> None:
    """Right after ``kill -9`` the lease is still valid; on this host a start with the same id
    (or on SQLite, any id) takes over at once: the lease names a process that is gone."""
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    world = PbxLegs()
    async with await Service.open(node_settings(url, "same"), pbx=LeftoverFakePbx(world)) as first:
        call_id = await place(first.engine)
        (lease,) = await first.store.list_nodes()
    # As kill -9 leaves it: the lease row valid for a minute, its process gone.
    gone = dataclasses.replace(
        lease, pid=await dead_pid(), lease_until=lease.lease_until + timedelta(seconds=60)
    )
    for node_id in ("same", "other"):
        async with opened(url) as store, store.transaction() as tx:
            await tx.put_node(gone)
        began = asyncio.get_running_loop().time()
        async with await Service.open(node_settings(url, node_id), pbx=LeftoverFakePbx(world)):
            assert asyncio.get_running_loop().time() - began < LEASE  # no wait for the lease
    async with opened(url) as store:
        call = await store.get_call(None, call_id)
    assert call is not None
    # The same node's previous run: its call ends as after any restart (not "node-lost").
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "service-restart")


async def test_a_node_whose_lease_was_taken_joins_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rejoin.db'}"
    async with await Service.open(node_settings(url, "n"), pbx=LeftoverFakePbx(PbxLegs())) as node:
        async with node.store.transaction() as tx:  # another node found it expired
            assert await tx.delete_node("n")
        await node.node.renew()
        (lease,) = await node.store.list_nodes()
        assert (lease.id, lease.run) == ("n", node.node.run)


@pytest.mark.postgres
async def test_a_pbx_restart_fails_only_the_calls_of_the_node_that_saw_it(
    postgres_server: str,
) -> None:
    """Each node hears of its PBX's restart itself; one node's report fails its own calls."""
    dsn = await fresh_database(postgres_server)
    world = PbxLegs()
    a_pbx, b_pbx = LeftoverFakePbx(world), LeftoverFakePbx(world)
    async with (
        await Service.open(node_settings(dsn, "a"), pbx=a_pbx) as a,
        await Service.open(node_settings(dsn, "b"), pbx=b_pbx) as b,
    ):
        mine, theirs = await place(a.engine), await place(b.engine)
        await a_pbx.answer(mine)
        await b_pbx.answer(theirs)
        await a_pbx.emit("", PbxEventKind.PBX_RESTARTED)
        lost = await a.store.get_call(None, mine)
        kept = await a.store.get_call(None, theirs)
        assert lost is not None
        assert (lost.status, lost.error) == (CallStatus.FAILED, "pbx-restart")
        assert kept is not None
        assert (kept.status, kept.owner_node) == (CallStatus.IN_PROGRESS, "b")


@pytest.mark.timeout(30)
async def test_a_call_settled_by_another_node_gets_no_second_report_from_its_first_node(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A node that could not renew its lease for a while (overloaded, the database slow) comes
    back to find a survivor ended its call ``node-lost`` and reported it: when its own
    conversation of that call ends, its record is dropped — no second, different end-of-call
    report, and the call stays as the survivor ended it."""
    url = f"sqlite:///{tmp_path / 'paused.db'}"
    world = PbxLegs()
    a_pbx = LeftoverFakePbx(world)
    async with await Service.open(node_settings(url, "a", receiver), pbx=a_pbx) as a:
        call_id = await place(a.engine)
        await a_pbx.answer(call_id)
        # Node b's settlement, an hour on by its clock: a's lease ran out, b claims and ends.
        async with a.store.transaction() as tx:
            later = await tx.clock() + timedelta(hours=1)
            [claimed] = await tx.claim_lost_calls("b", later)
            settled = dataclasses.replace(claimed, status=CallStatus.ENDED, end_reason=NODE_LOST)
            await tx.update_call(settled)
        await a.engine.records.store_live_record(call_id, None)
        await asyncio.sleep(0.5)  # a report would be on its way to the receiver by now
        assert reports(receiver, call_id) == 0
        after = await a.store.get_call(None, call_id)
        assert after is not None
        assert (after.status, after.end_reason, after.owner_node) == (
            CallStatus.ENDED,
            NODE_LOST,
            "b",
        )


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_a_node_whose_pool_is_busy_still_renews_its_lease(postgres_server: str) -> None:
    """Every pooled connection busy with the node's calls (a node carrying many calls on a
    slow database) for longer than the lease: the lease is renewed on its own connection, so
    the node is not taken for dead and no other node ends its calls."""
    dsn = await fresh_database(postgres_server)
    async with (
        await Service.open(node_settings(dsn, "busy"), pbx=LeftoverFakePbx(PbxLegs())) as busy,
        opened(dsn) as observer,
        contextlib.AsyncExitStack() as held,
    ):
        with warnings.catch_warnings():  # one task holding them all: on purpose here
            warnings.simplefilter("ignore", PoolDeadlockWarning)
            for _ in range(10):  # the pool's size: nothing of the node's own work gets through
                await held.enter_async_context(busy.store.transaction())
        await asyncio.sleep(LEASE + 1)
        async with observer.transaction() as tx:
            now = await tx.clock()
        [lease] = await observer.list_nodes()
        assert lease.id == "busy"
        assert lease.lease_until > now  # renewed while the pool was held
