"""A node that drains (``calls/nodes/drain.py``), driven through its API over a fake PBX: it
places no new call (alone: ``503 Node draining`` with ``Retry-After``; beside a live node on
PostgreSQL: the call is handed on and placed there, its answer the client's, idempotency
included), dials no scheduled call, says so on ``/health`` and ``/metrics``, sends inbound
callers to the other nodes (or rejects them when none is left), keeps serving its calls'
commands, and is done once it holds no call, or when its drain timeout passes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.conftest import Api, serving
from calls.nodes.test_lease import node_settings
from calls.test_recovery import ACME_ID
from e2e.conftest import start_app
from fakes.pbx import FakePbx
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings
from pg_server import fresh_database
from voicedock.api.api_keys import issue_api_key
from voicedock.calls.errors import NodeUnavailable
from voicedock.calls.nodes.command_relay import Forwarded, ForwardedAnswer
from voicedock.pbx.base import InboundAway
from voicedock.service import Service

pytestmark = pytest.mark.unit

CALL = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}


class DrainingFakePbx(FakePbx):
    """A PBX that hears where a draining node's inbound callers go, and the live nodes."""

    def __init__(self) -> None:
        super().__init__()
        self.away: list[InboundAway | None] = []
        self.nodes: list[tuple[list[str], list[str]]] = []

    def turn_inbound_away(self, away: InboundAway | None) -> None:
        self.away.append(away)

    async def set_live_nodes(self, node_ids: list[str], draining: Collection[str] = ()) -> None:
        self.nodes.append((node_ids, sorted(draining)))


async def until(check: Any, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.02)


async def draining(service: Service) -> None:
    """Ask ``service`` to drain, as SIGTERM does, and wait until it does."""
    service.drain.request("test")

    async def drains() -> bool:
        return service.node.draining

    await until(drains)


async def status_of(api: Api, call_id: str) -> str:
    resp = await api.client.get(f"/calls/{call_id}", headers=api.auth())
    body = await resp.json()
    return str(body["status"])


@pytest.fixture
async def alone(tmp_path: Any) -> AsyncIterator[Api]:
    settings = make_settings(f"sqlite:///{tmp_path / 'drain.db'}")
    settings.metrics.bearer_token = "a-token-for-the-drain-test"
    async with serving(settings) as running:
        yield running


@pytest.mark.timeout(60)
async def test_a_draining_node_alone_takes_no_new_call_and_is_done_once_its_call_ends(
    alone: Api,
) -> None:
    api, service = alone, alone.service
    placed = await api.client.post("/calls/outbound", json=CALL, headers=api.auth())
    assert placed.status == 200, await placed.text()
    call_id = (await placed.json())["call_id"]
    await api.pbx.answer(call_id)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    later = {**CALL, "scheduled_at": soon}

    await draining(service)
    health = await api.client.get("/health")
    assert health.status == 503
    body = await health.json()
    assert (body["status"], body["draining"], body["can_place_calls"]) == ("draining", True, False)
    metrics = await api.client.get(
        "/metrics", headers={"Authorization": "Bearer a-token-for-the-drain-test"}
    )
    assert "voicedock_node_draining 1.0" in await metrics.text()

    refused = await api.client.post("/calls/outbound", json=CALL, headers=api.auth())
    assert refused.status == 503
    assert refused.headers["Retry-After"] == str(service.settings.node.lease_seconds)
    answer = await refused.json()
    assert answer["error"] == "Node draining"
    assert "draining" in answer["message"]
    assert len(api.pbx.originated) == 1  # nothing more dialed

    # A call for later is stored as ever (a dialer places it when due), but not by this node.
    scheduled = await api.client.post("/calls/outbound", json=later, headers=api.auth())
    assert scheduled.status == 201, await scheduled.text()
    scheduled_id = (await scheduled.json())["call_id"]

    # The call in progress goes on: its commands are carried out; the drain waits for it.
    say = {"type": "say", "content": "Still here."}
    control = await api.client.post(f"/calls/{call_id}/control", json=say, headers=api.auth())
    assert control.status == 200, await control.text()
    await asyncio.sleep(1.5)  # the scheduled call comes due meanwhile
    assert not service.drain.finished.is_set()
    assert await status_of(api, call_id) == "in-progress"
    assert await status_of(api, scheduled_id) == "scheduled"  # not dialed here
    assert len(api.pbx.originated) == 1

    await api.pbx.hang_up_remote(call_id)
    async with asyncio.timeout(2):
        await service.drain.finished.wait()
    assert service.drain.left == set()
    assert await status_of(api, call_id) == "ended"


@pytest.mark.timeout(30)
async def test_the_drain_timeout_ends_the_drain_with_calls_left(tmp_path: Any) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'timeout.db'}")
    settings.node.drain_timeout_seconds = 1
    async with serving(settings) as api:
        placed = await api.client.post("/calls/outbound", json=CALL, headers=api.auth())
        call_id = (await placed.json())["call_id"]
        ringing = await api.client.post("/calls/outbound", json=CALL, headers=api.auth())
        ringing_id = (await ringing.json())["call_id"]
        await api.pbx.answer(call_id)
        started = asyncio.get_running_loop().time()
        api.service.drain.request("test")
        async with asyncio.timeout(5):
            await api.service.drain.finished.wait()
        assert 1.0 <= asyncio.get_running_loop().time() - started < 2.5
        assert api.service.drain.left == {call_id, ringing_id}  # the stop hangs them up


@pytest.mark.timeout(30)
async def test_without_calls_the_drain_is_done_at_once_and_a_zero_timeout_never_waits(
    tmp_path: Any,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'zero.db'}")
    settings.node.drain_timeout_seconds = 0
    async with serving(settings) as api:
        api.service.drain.request("test")
        async with asyncio.timeout(2):
            await api.service.drain.finished.wait()
        assert api.service.drain.left == set()


class RefusingPbx(FakePbx):
    """A PBX that fails when told where a draining node's callers go."""

    def turn_inbound_away(self, away: InboundAway | None) -> None:
        raise RuntimeError("the PBX refused")


@pytest.mark.timeout(30)
async def test_a_drain_that_fails_is_over_so_the_node_stops(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client, service = await start_app(
        make_settings(f"sqlite:///{tmp_path / 'failing.db'}"), RefusingPbx()
    )
    try:
        service.drain.request("test")
        async with asyncio.timeout(2):
            await service.drain.finished.wait()
        assert "others not told it drains yet" in caplog.text
    finally:
        await client.close()


@pytest.mark.postgres
@pytest.mark.timeout(90)
async def test_a_draining_node_hands_new_calls_and_inbound_callers_to_the_live_node(
    postgres_server: str,
) -> None:
    dsn = await fresh_database(postgres_server)
    a_pbx, b_pbx = DrainingFakePbx(), DrainingFakePbx()
    a_client, a = await start_app(node_settings(dsn, "a"), a_pbx)
    b_client: TestClient[Any, Any] | None = None
    try:
        b_client, b = await start_app(node_settings(dsn, "b"), b_pbx)
        key, _ = await issue_api_key(a.store, ACME)
        auth = {"Authorization": f"Bearer {key}"}
        async with asyncio.timeout(10):
            await a.node.commands.listening.wait()
            await b.node.commands.listening.wait()
        await draining(a)

        async def told() -> bool:  # the drain stored, the live nodes read, the PBX told
            return bool(a_pbx.away)

        await until(told)
        assert a.node.others == ("b",)
        assert a_pbx.away[-1] is InboundAway.ELSEWHERE  # b takes a's inbound callers
        assert a_pbx.nodes[-1] == (["b"], ["a"])  # a is no node for inbound calls any more

        # Sent to a, placed by b: the answer is b's, and so is the call.
        placed = await a_client.post("/calls/outbound", json=CALL, headers=auth)
        assert placed.status == 200, await placed.text()
        answer = await placed.json()
        assert answer["status"] == "dialing"
        call = await b.store.get_call(None, answer["call_id"])
        assert call is not None
        assert call.owner_node == "b"
        assert [r.call_id for r in b_pbx.originated] == [answer["call_id"]]
        assert a_pbx.originated == []
        # b's API shows it too, and b's renewals leave a out of the inbound calls.
        shown = await b_client.get(f"/calls/{answer['call_id']}", headers=auth)
        assert (await shown.json())["status"] == "connecting"

        async def b_leaves_a_out() -> bool:
            return bool(b_pbx.nodes) and b_pbx.nodes[-1] == (["b"], ["a"])

        await until(b_leaves_a_out)

        # An Idempotency-Key is b's to keep: the same request again is b's stored answer.
        keyed = {**auth, "Idempotency-Key": "drain-1"}
        first = await a_client.post("/calls/outbound", json=CALL, headers=keyed)
        again = await a_client.post("/calls/outbound", json=CALL, headers=keyed)
        assert first.status == again.status == 200
        assert (await first.json())["call_id"] == (await again.json())["call_id"]
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert "Idempotent-Replayed" not in first.headers
        assert len(b_pbx.originated) == 2

        # b's refusals are passed on as b gave them; a body a cannot read is a's own 400.
        refused = {**CALL, "destination": "+881612345678"}
        by_a = await a_client.post("/calls/outbound", json=refused, headers=auth)
        by_b = await b_client.post("/calls/outbound", json=refused, headers=auth)
        assert by_a.status == by_b.status == 403
        assert await by_a.json() == await by_b.json()
        bad = await a_client.post("/calls/outbound", json={"destination": 1}, headers=auth)
        assert bad.status == 400

        # A call for later, sent to a, is dialed by b's dialer when due (a dials nothing).
        soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        later = await a_client.post(
            "/calls/outbound", json={**CALL, "scheduled_at": soon}, headers=auth
        )
        assert later.status == 201, await later.text()
        later_id = (await later.json())["call_id"]

        async def dialed() -> bool:
            call = await b.store.get_call(None, later_id)
            return call is not None and call.status.value != "scheduled"

        await until(dialed, 10)
        dialed_call = await b.store.get_call(None, later_id)
        assert dialed_call is not None
        assert dialed_call.owner_node == "b"
        assert later_id in [r.call_id for r in b_pbx.originated]
        assert a_pbx.originated == []

        # b stops: no node is left for a's callers, nor for its new calls.
        await b_client.close()
        b_client = None

        async def rejected() -> bool:
            return a_pbx.away[-1] is InboundAway.REJECTED

        await until(rejected)
        assert a_pbx.nodes[-1] == (["a"], [])  # its callers reach it, to be rejected
        alone = await a_client.post("/calls/outbound", json=CALL, headers=auth)
        assert alone.status == 503
        assert (await alone.json())["error"] == "Node draining"
    finally:
        if b_client is not None:
            await b_client.close()
        await a_client.close()


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_voicedock_nodes_drain_reaches_the_node_at_its_next_renewal(
    postgres_server: str,
) -> None:
    dsn = await fresh_database(postgres_server)
    client, service = await start_app(node_settings(dsn, "a"), FakePbx())
    try:
        async with service.store.transaction() as tx:
            lease = await tx.drain_node("a")
        assert lease is not None
        assert lease.draining
        assert not service.node.draining
        async with asyncio.timeout(3):  # a renewal every second (the shortest lease)
            await service.drain.finished.wait()
        assert service.node.draining
        health = await client.get("/health")
        assert (await health.json())["status"] == "draining"
        async with service.store.transaction() as tx:
            assert await tx.drain_node("nobody") is None
    finally:
        await client.close()


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_a_node_that_fails_to_take_a_handed_on_call_is_a_503_not_a_500(
    postgres_server: str,
) -> None:
    """A node that cannot take the request (a bug, or an older version without the hand-over)
    answers "failed": the client is told to look before sending it again."""
    dsn = await fresh_database(postgres_server)
    a = await Service.open(node_settings(dsn, "a"), pbx=FakePbx())
    b = await Service.open(node_settings(dsn, "b"), pbx=FakePbx())
    try:

        async def broken(asked: Forwarded) -> ForwardedAnswer:
            raise RuntimeError("no such request here")

        b.node.commands.take_forwarded(broken)
        async with asyncio.timeout(10):
            await b.node.commands.listening.wait()
        with pytest.raises(NodeUnavailable) as refused:
            await a.node.commands.forward("b", Forwarded(ACME_ID, "key", CALL, None))
        assert refused.value.status == 503
        assert "failed to take it" in refused.value.message
    finally:
        await b.aclose()
        await a.aclose()
