"""FreeswitchPbx after a lost Event Socket or its own restart, and inbound calls parked by the
dialplan. Call ids are the engine's own (``domain/ids.py``), never channel uuids."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from pbx.freeswitch.test_pbx_leftovers import previous_run
from pbx.freeswitch.test_pbx_outbound import PASSWORD, make_pbx, originates, request
from voicedock.domain.ids import new_inbound_call_id
from voicedock.pbx.base import InboundAway, InboundCall, PbxEventKind
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx

pytestmark = pytest.mark.unit

DID = "+15557654321"
InboundHandler = Callable[[InboundCall], Awaitable[str | None]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as fs:
        yield fs


async def reconnected(pbx: FreeswitchPbx, count: int = 1) -> None:
    async with asyncio.timeout(2):
        while pbx.esl.reconnects < count or not pbx.esl.connected:
            await asyncio.sleep(0.01)


async def test_reconnect_mid_call_reconciles_without_second_originate(
    fake: FakeFreeswitch,
) -> None:
    events = PbxEventRecorder()
    async with make_pbx(fake) as pbx:
        await pbx.start(events)
        survivor, lost = request(), request()
        await pbx.originate(survivor)
        await pbx.originate(lost)
        await events.wait_for(survivor.call_id, PbxEventKind.ANSWERED)
        await events.wait_for(lost.call_id, PbxEventKind.ANSWERED)

        fake.drop_connections()
        del fake.channels[fake.uuid_of(lost.call_id)]  # ended while we were away: no event
        await reconnected(pbx)

        hangup = await events.wait_for(lost.call_id, PbxEventKind.HANGUP)
        assert hangup.detail == "reconciled"
        assert PbxEventKind.HANGUP not in events.kinds(survivor.call_id)
        assert await pbx.live_call_ids() == {survivor.call_id}
        assert len(originates(fake)) == 2  # nothing re-sent
        assert fake.commands.count("api show channels as json") >= 1

        fake.remote_hangup(fake.uuid_of(survivor.call_id))  # events flow on the new connection
        ended = await events.wait_for(survivor.call_id, PbxEventKind.HANGUP)
        assert ended.cause == 16


async def test_connection_lost_while_ringing_is_not_resent(fake: FakeFreeswitch) -> None:
    fake.ring_delay = 0.2
    events = PbxEventRecorder()
    async with make_pbx(fake) as pbx:
        await pbx.start(events)
        call = request()
        await pbx.originate(call)  # accepted; the job is still ringing
        await asyncio.sleep(0.05)
        fake.drop_connections()
        await reconnected(pbx)
        # FreeSWITCH still has the channel: the call lives on and is answered.
        await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
        assert len(originates(fake)) == 1
        assert PbxEventKind.HANGUP not in events.kinds(call.call_id)


def taking(call_id: str | None, offered: list[InboundCall]) -> InboundHandler:
    """The engine's inbound handler: keeps each caller offered in ``offered`` and takes it as
    ``call_id`` (``None``: rejects it)."""

    async def handler(call: InboundCall) -> str | None:
        offered.append(call)
        return call_id

    return handler


async def test_inbound_call_to_our_did_is_handed_over_and_answered(
    fake: FakeFreeswitch,
) -> None:
    events = PbxEventRecorder()
    offered: list[InboundCall] = []
    call_id = new_inbound_call_id("+31623731537")  # call-_+31623731537_<12>: holds a "+"

    async with make_pbx(fake, dids={DID}) as pbx:
        pbx.set_inbound_handler(taking(call_id, offered))
        await pbx.start(events)
        channel = fake.inbound_call(DID, caller="+31623731537")
        await events.wait_for(call_id, PbxEventKind.ANSWERED)
        assert offered == [InboundCall(channel, "+31623731537", DID)]
        assert f"api uuid_setvar {channel} voicedock_call_id {call_id}" in fake.commands
        assert f"api uuid_answer {channel}" in fake.commands
        assert fake.channels[channel].answered
        assert fake.channels[channel].variables["voicedock_call_id"] == call_id
        assert await pbx.live_call_ids() == {call_id}

        await pbx.hangup(call_id)
        hangup = await events.wait_for(call_id, PbxEventKind.HANGUP)
        assert hangup.cause == 16
        assert f"api uuid_kill {channel} NORMAL_CLEARING" in fake.commands
        assert events.kinds(call_id).count(PbxEventKind.ANSWERED) == 1


async def test_inbound_rejected_by_handler_and_foreign_dids_ignored(
    fake: FakeFreeswitch,
) -> None:
    events = PbxEventRecorder()
    offered: list[InboundCall] = []

    async with make_pbx(fake, dids={DID}) as pbx:
        pbx.set_inbound_handler(taking(None, offered))
        await pbx.start(events)
        foreign = fake.inbound_call("+15559998888")
        ours = fake.inbound_call(DID)
        async with asyncio.timeout(2):
            while ours in fake.channels:
                await asyncio.sleep(0.01)
        assert [c.pbx_call_ref for c in offered] == [ours]
        assert f"api uuid_kill {ours} CALL_REJECTED" in fake.commands
        assert foreign in fake.channels  # another application's call: untouched
        assert not any(foreign in c for c in fake.commands)
        assert events.events == []


async def test_a_draining_node_leaves_callers_to_the_live_nodes_or_rejects_them(
    fake: FakeFreeswitch,
) -> None:
    offered: list[InboundCall] = []

    async with make_pbx(fake, dids={DID}, node_id="a") as pbx:
        pbx.set_inbound_handler(taking(new_inbound_call_id(None), offered))
        await pbx.start(PbxEventRecorder())
        pbx.turn_inbound_away(InboundAway.ELSEWHERE)  # another live node claims it
        elsewhere = fake.inbound_call(DID)
        await asyncio.sleep(0.3)
        assert not fake.channels[elsewhere].answered
        assert not any(elsewhere in c for c in fake.commands)  # not even claimed

        pbx.turn_inbound_away(InboundAway.REJECTED)  # no node is left to take it
        rejected = fake.inbound_call(DID)
        async with asyncio.timeout(2):
            while rejected in fake.channels:
                await asyncio.sleep(0.01)
        assert f"api uuid_kill {rejected} CALL_REJECTED" in fake.commands
        assert offered == []

        pbx.turn_inbound_away(None)  # answered again
        taken = fake.inbound_call(DID)
        async with asyncio.timeout(2):
            while not fake.channels[taken].answered:
                await asyncio.sleep(0.01)
        assert [c.pbx_call_ref for c in offered] == [taken]


@pytest.mark.parametrize(
    "returned",
    [
        pytest.param(str(uuid.uuid4()), id="a-uuid"),  # fixed id: one collection per worker
        "call-_+31623731537_abc def",
        "call-_+3162373\n1537_abcdefABCDEF",
    ],
)
async def test_inbound_accepted_with_something_not_a_call_id_is_rejected(
    fake: FakeFreeswitch, returned: str
) -> None:
    async def accept(call: InboundCall) -> str | None:
        return returned

    async with make_pbx(fake, dids={DID}) as pbx:
        pbx.set_inbound_handler(accept)
        await pbx.start(PbxEventRecorder())
        ours = fake.inbound_call(DID)
        async with asyncio.timeout(2):
            while ours in fake.channels:
                await asyncio.sleep(0.01)
        assert f"api uuid_kill {ours} CALL_REJECTED" in fake.commands
        assert not any("uuid_setvar" in c or "uuid_answer" in c for c in fake.commands)


async def test_after_our_restart_live_channels_are_adopted_by_their_call_id(
    fake: FakeFreeswitch,
) -> None:
    """voicedock restarts while calls are up: ``live_call_ids`` (what the engine reconciles
    against) names them by call id again, and they can be hung up; foreign channels are not."""
    left = await previous_run(fake, DID)
    (outbound,), inbound_id = left.outbound, left.inbound_id
    foreign = fake.inbound_call("+15559998888")  # another application's call

    events = PbxEventRecorder()
    async with make_pbx(fake, dids={DID}) as second:
        await second.start(events)
        assert await second.live_call_ids() == {outbound.call_id, inbound_id, foreign}
        await second.reconcile()  # adopted calls are on the PBX: nothing is ended
        assert events.events == []
        for call_id in (outbound.call_id, inbound_id):
            await second.hangup(call_id)
            hangup = await events.wait_for(call_id, PbxEventKind.HANGUP)
            assert hangup.cause == 16
        assert set(fake.channels) == {foreign}
