"""Control commands for a call another node serves (``calls/nodes/command_relay.py``): two nodes in
one process on a real PostgreSQL, over fake PBXs. Sent to node b, a command for node a's call is
carried out by node a (its conversation, its PBX) and answered as node a answers, however long;
a command node a does not take (or answer) in time is a 503 that says whether it may happen; a
command for a call whose node died ends the call ``node-lost`` and says so; the listening
connection comes back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from api.test_control_api import RecordingLiveCall
from calls.nodes.test_lease import LEASE, node_settings
from calls.test_recovery import (
    ACME_ID,
    INBOUND_CHANNEL,
    LeftoverFakePbx,
    PbxLegs,
    cut_off,
    place,
)
from fakes.world import ACME_NUMBERS
from pg_server import fresh_database
from voicedock.calls.control import ControlCommand, EndCall, InjectContext, Say, Transfer
from voicedock.calls.errors import CallNotActive, NodeUnavailable
from voicedock.calls.json_readers import MAX_TEXT
from voicedock.calls.transitions import NODE_LOST
from voicedock.domain.records import CallStatus
from voicedock.errors import ApiError
from voicedock.pbx.base import InboundCall
from voicedock.service import Service

pytestmark = [pytest.mark.unit, pytest.mark.postgres]

# The database connections listening for node commands (their last statement was LISTEN).
LISTENING = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
)


class Nodes:
    def __init__(self, dsn: str, a: Service, b: Service, a_pbx: LeftoverFakePbx) -> None:
        self.dsn, self.a, self.b, self.a_pbx = dsn, a, b, a_pbx


@pytest.fixture
async def nodes(postgres_server: str) -> AsyncIterator[Nodes]:
    """Node a (short lease) and node b (a long one: it settles dead nodes' calls only when a
    command asks it to, within these tests' time)."""
    dsn = await fresh_database(postgres_server)
    world = PbxLegs()
    a_pbx = LeftoverFakePbx(world)
    a = await Service.open(node_settings(dsn, "a"), pbx=a_pbx)
    b_settings = node_settings(dsn, "b")
    b_settings.node.lease_seconds = 300
    try:
        b = await Service.open(b_settings, pbx=LeftoverFakePbx(world))
    except BaseException:
        await a.aclose()
        raise
    try:
        async with asyncio.timeout(10):
            await a.node.commands.listening.wait()
            await b.node.commands.listening.wait()
        yield Nodes(dsn, a, b, a_pbx)
    finally:
        await b.aclose()
        await a.aclose()


async def answered_call(nodes: Nodes) -> tuple[str, RecordingLiveCall]:
    call_id = await place(nodes.a.engine)
    await nodes.a_pbx.answer(call_id)
    live = RecordingLiveCall()
    nodes.a.engine.records.attach(call_id, live)
    return call_id, live


async def answer_of(service: Service, call_id: str, command: ControlCommand) -> tuple[int, object]:
    try:
        await service.node.control(ACME_ID, call_id, command)
    except ApiError as exc:
        return exc.status, exc.body()
    return 200, None


@pytest.mark.timeout(60)
async def test_commands_sent_to_another_node_are_carried_out_by_the_calls_node(
    nodes: Nodes,
) -> None:
    call_id, live = await answered_call(nodes)
    b = nodes.b
    await b.node.control(ACME_ID, call_id, Say("One moment please"))
    await b.node.control(ACME_ID, call_id, InjectContext("Verified: John", True))
    await b.node.control(ACME_ID, call_id, Transfer("sales", mode="warm"))
    assert live.said == ["One moment please"]
    assert live.injected == [("Verified: John", True)]
    assert [(c, t.destination) for c, t in nodes.a_pbx.transfers] == [(call_id, "sales")]
    events = [e.data for e in await b.store.list_events(call_id) if e.type == "control"]
    assert [(e["type"], e["delivered_to"]) for e in events] == [
        ("say", "conversation"),
        ("inject-context", "conversation"),
        ("transfer", "conversation"),
    ]

    # An error answer is node a's, word for word: a refused destination, then a ringing call.
    refused = Transfer("+881612345678")
    assert await answer_of(b, call_id, refused) == await answer_of(nodes.a, call_id, refused)
    assert (await answer_of(b, call_id, refused))[0] == 403
    ringing = await place(nodes.a.engine)
    said = Say("hello")
    assert await answer_of(b, ringing, said) == await answer_of(nodes.a, ringing, said)
    assert (await answer_of(b, ringing, said))[0] == 409

    await b.node.control(ACME_ID, call_id, EndCall("Bye"))
    assert live.ended == ["Bye"]
    # end-call of a ringing call through node b: node a's PBX cancels it.
    await b.node.control(ACME_ID, ringing, EndCall())
    assert (ringing, "normal") in nodes.a_pbx.hangups
    cancelled = await b.store.get_call(ACME_ID, ringing)
    assert cancelled is not None
    assert (cancelled.status, cancelled.end_reason) == (CallStatus.ENDED, "cancelled")


@pytest.mark.timeout(60)
async def test_an_answer_heard_before_its_sender_looks_for_it_is_not_waited_for(
    nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy node the owner's answer (and its notification) can arrive before the sender,
    back from storing the command, starts waiting: the sender takes it at once, not at its
    next look at the row a second later."""
    call_id, live = await answered_call(nodes)
    mailbox = nodes.b.node.commands.mailbox
    assert mailbox is not None
    send = mailbox.send

    async def busy_send(sender: str, recipient: str, request: str) -> int:
        command_id = await send(sender, recipient, request)
        async with asyncio.timeout(5):  # node a answers (and notifies) meanwhile
            while (found := await mailbox.reply(command_id)) is None or found.reply is None:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # the answer's notification is heard
        return command_id

    monkeypatch.setattr(mailbox, "send", busy_send)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await nodes.b.node.control(ACME_ID, call_id, Say("Right away"))
    assert loop.time() - began < 0.7
    assert live.said == ["Right away"]


@pytest.mark.timeout(60)
async def test_the_longest_command_and_an_inbound_calls_end_call_cross_nodes(
    nodes: Nodes,
) -> None:
    call_id, live = await answered_call(nodes)
    longest = "é" * MAX_TEXT  # 20,000 bytes: more than a notification may carry
    await nodes.b.node.control(ACME_ID, call_id, InjectContext(longest))
    assert live.injected == [(longest, False)]

    inbound = await nodes.a.engine.inbound.accept(
        InboundCall(INBOUND_CHANNEL, "+31623731537", ACME_NUMBERS[0])
    )
    assert inbound is not None
    await nodes.a_pbx.answer(inbound)
    await nodes.b.node.control(ACME_ID, inbound, EndCall())
    assert nodes.a_pbx.hangups == [(inbound, "normal")]
    call = await nodes.b.store.get_call(ACME_ID, inbound)
    assert call is not None
    assert call.end_reason == "api-end-call"


class SlowLiveCall(RecordingLiveCall):
    async def say(self, content: str) -> None:
        await asyncio.sleep(3)
        await super().say(content)


@pytest.mark.timeout(60)
async def test_a_command_taken_but_not_answered_in_time_is_a_503_that_says_it_may_happen(
    nodes: Nodes,
) -> None:
    call_id = await place(nodes.a.engine)
    await nodes.a_pbx.answer(call_id)
    live = SlowLiveCall()
    nodes.a.engine.records.attach(call_id, live)
    nodes.b.node.commands.timeout = 1.0
    with pytest.raises(NodeUnavailable) as late:
        await nodes.b.node.control(ACME_ID, call_id, Say("slowly"))
    assert late.value.message == (
        "node 'a', which serves this call, did not answer within 1 s; the command may still be "
        "carried out: look at the call's events before sending it again"
    )
    async with asyncio.timeout(5):
        while not live.said:
            await asyncio.sleep(0.05)
    assert live.said == ["slowly"]


@pytest.mark.timeout(60)
async def test_a_command_the_calls_node_does_not_take_in_time_is_a_503_and_not_carried_out(
    nodes: Nodes,
) -> None:
    call_id, live = await answered_call(nodes)
    # Node a is alive (its lease renewed) but stops listening for commands.
    listener = next(t for t in nodes.a.node._tasks.children if t.get_name() == "node-commands")
    listener.cancel()
    nodes.b.node.commands.timeout = 1.5
    with pytest.raises(NodeUnavailable) as refused:
        await nodes.b.node.control(ACME_ID, call_id, Say("late"))
    assert refused.value.status == 503
    assert refused.value.body() == {
        "error": "Node unavailable",
        "message": "node 'a', which serves this call, did not take the command within 1.5 s; "
        "it was not carried out: send it again",
    }
    conn = await asyncpg.connect(nodes.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM node_commands") == 0
    finally:
        await conn.close()
    assert live.said == []
    call = await nodes.b.store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.IN_PROGRESS


@pytest.mark.timeout(60)
async def test_a_command_for_a_dead_nodes_call_ends_it_node_lost_and_says_so(
    nodes: Nodes,
) -> None:
    call_id, _ = await answered_call(nodes)
    await cut_off(nodes.a)  # node a stops renewing its lease, as if killed
    await asyncio.sleep(LEASE + 0.5)
    with pytest.raises(CallNotActive) as refused:
        await nodes.b.node.control(ACME_ID, call_id, Say("anyone there?"))
    assert refused.value.body() == {
        "error": "Call not active",
        "message": "node 'a', which served the call, stopped (its lease expired): "
        "the call has ended (end_reason node-lost)",
    }
    call = await nodes.b.store.get_call(ACME_ID, call_id)
    assert call is not None
    assert (call.status, call.end_reason, call.owner_node) == (CallStatus.ENDED, NODE_LOST, "b")


@pytest.mark.timeout(60)
async def test_commands_reach_a_node_whose_listening_connection_was_cut(nodes: Nodes) -> None:
    call_id, live = await answered_call(nodes)
    conn = await asyncpg.connect(nodes.dsn)
    try:
        cut = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        )
        assert cut == 2  # both nodes'
        await nodes.b.node.control(ACME_ID, call_id, Say("still there"))
        assert live.said == ["still there"]
        async with asyncio.timeout(10):
            while await conn.fetchval(LISTENING) < 2:
                await asyncio.sleep(0.1)
    finally:
        await conn.close()


@pytest.mark.timeout(60)
async def test_a_closed_node_stops_listening_and_closes_twice(nodes: Nodes) -> None:
    conn = await asyncpg.connect(nodes.dsn)
    try:
        assert await conn.fetchval(LISTENING) == 2
        await nodes.b.node.aclose()
        await nodes.b.node.aclose()
        assert not nodes.b.node.commands.listening.is_set()
        async with asyncio.timeout(5):
            while await conn.fetchval(LISTENING) != 1:  # node a's only
                await asyncio.sleep(0.05)
    finally:
        await conn.close()
