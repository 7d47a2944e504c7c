"""After voicedock's own restart, ``hang_up_leftovers`` kills what the previous run left on the
fake FreeSWITCH (found by ``voicedock_call_id``), checks ``show channels``, and touches neither
another application's channel nor the calls of this run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from pbx.freeswitch.test_pbx_outbound import PASSWORD, make_pbx, request
from voicedock.domain.ids import new_inbound_call_id
from voicedock.pbx.base import InboundCall, OriginateRequest, PbxEventKind

pytestmark = pytest.mark.unit

DID = "+31201234567"
CALLER = "+31623731537"


@dataclass
class PreviousRun:
    """What a previous run of voicedock left live at FreeSWITCH."""

    outbound: list[OriginateRequest]
    inbound_id: str
    inbound_leg: str  # the inbound channel's uuid (the stored ``pbx_call_ref``)


async def previous_run(fake: FakeFreeswitch, did: str, outbound: int = 1) -> PreviousRun:
    """A run of voicedock that placed ``outbound`` calls and accepted one call from CALLER to
    ``did``, all answered, then stopped without hanging up (as after a ``kill -9``)."""
    inbound_id = new_inbound_call_id(CALLER)

    async def accept(call: InboundCall) -> str | None:
        return inbound_id

    events = PbxEventRecorder()
    async with make_pbx(fake, dids={did}) as first:
        first.set_inbound_handler(accept)
        await first.start(events)
        calls = [request() for _ in range(outbound)]
        for call in calls:
            await first.originate(call)
            await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
        leg = fake.inbound_call(did, caller=CALLER)
        await events.wait_for(inbound_id, PbxEventKind.ANSWERED)
    return PreviousRun(calls, inbound_id, leg)


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as server:
        yield server


async def test_a_previous_runs_channels_are_killed_and_checked_gone(fake: FakeFreeswitch) -> None:
    left = await previous_run(fake, DID)
    (outbound,), inbound_id = left.outbound, left.inbound_id
    foreign = fake.inbound_call("+15559998888")  # another application's call

    events = PbxEventRecorder()
    async with make_pbx(fake, dids={DID}) as second:
        await second.start(events)
        current = request()
        await second.originate(current)  # a call of this run, with a live channel
        await events.wait_for(current.call_id, PbxEventKind.ANSWERED)
        leftovers = {outbound.call_id: None, inbound_id: None, current.call_id: None}
        assert await second.hang_up_leftovers(leftovers) == set()
        assert len(fake.channels) == 2
        assert foreign in fake.channels
        assert all(e.call_id == current.call_id for e in events.events)  # nothing adopted


async def test_a_previous_runs_answered_calls_are_adopted_with_fresh_media(
    fake: FakeFreeswitch,
) -> None:
    """``adopt_call``: the live answered leg becomes this run's (its hang-up reported, a new
    audio stream on it, ``hangup`` working); a leg that is gone is not adopted."""
    left = await previous_run(fake, DID, outbound=2)
    (outbound, gone), inbound_id, inbound_leg = left.outbound, left.inbound_id, left.inbound_leg
    fake.remote_hangup(fake.uuid_of(gone.call_id))  # the party left while voicedock was down

    events = PbxEventRecorder()
    async with make_pbx(fake, dids={DID}) as second:
        await second.start(events)
        assert await second.adopt_call(outbound.call_id, None)
        assert await second.adopt_call(inbound_id, inbound_leg)
        assert not await second.adopt_call(gone.call_id, None)
        assert not await second.adopt_call(outbound.call_id, None)  # already this run's
        channel = fake.uuid_of(outbound.call_id)
        # What the previous run may have left on the channel is stopped first.
        assert f"api uuid_break {channel} all" in fake.commands
        assert f"api uuid_audio_stream {channel} stop" in fake.commands
        streams = len(fake.audio_streams)
        async with second.call_media(outbound.call_id):
            assert len(fake.audio_streams) == streams + 1
            assert channel in fake.streams_by_uuid
        assert await second.live_call_ids() == {outbound.call_id, inbound_id}
        fake.remote_hangup(inbound_leg)
        assert (await events.wait_for(inbound_id, PbxEventKind.HANGUP)).cause == 16
        await second.hangup(outbound.call_id)
        await events.wait_for(outbound.call_id, PbxEventKind.HANGUP)
        assert not fake.channels
        assert PbxEventKind.ANSWERED not in events.kinds(outbound.call_id)  # not re-reported
