"""After voicedock's own restart, ``hang_up_leftovers`` kills what the previous run left on the
fake FreeSWITCH (found by ``voicedock_call_id``), checks ``show channels``, and touches neither
another application's channel nor the calls of this run."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from freeswitch.test_pbx_outbound import PASSWORD, make_pbx, request
from voicedock.calls.ids import new_inbound_call_id
from voicedock.pbx.base import InboundCall, PbxEventKind

pytestmark = pytest.mark.unit

DID = "+31201234567"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as server:
        yield server


async def test_a_previous_runs_channels_are_killed_and_checked_gone(fake: FakeFreeswitch) -> None:
    inbound_id = new_inbound_call_id("+31623731537")

    async def accept(call: InboundCall) -> str | None:
        return inbound_id

    first_events = PbxEventRecorder()
    async with make_pbx(fake, dids={DID}) as first:
        first.set_inbound_handler(accept)
        await first.start(first_events)
        outbound = request()
        await first.originate(outbound)
        fake.inbound_call(DID, caller="+31623731537")
        await first_events.wait_for(outbound.call_id, PbxEventKind.ANSWERED)
        await first_events.wait_for(inbound_id, PbxEventKind.ANSWERED)
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
    inbound_id = new_inbound_call_id("+31623731537")

    async def accept(call: InboundCall) -> str | None:
        return inbound_id

    first_events = PbxEventRecorder()
    async with make_pbx(fake, dids={DID}) as first:
        first.set_inbound_handler(accept)
        await first.start(first_events)
        outbound, gone = request(), request()
        for call in (outbound, gone):
            await first.originate(call)
            await first_events.wait_for(call.call_id, PbxEventKind.ANSWERED)
        inbound_leg = fake.inbound_call(DID, caller="+31623731537")
        await first_events.wait_for(inbound_id, PbxEventKind.ANSWERED)
        async with first.call_media(outbound.call_id):
            pass
    fake.remote_hangup(fake.uuid_of(gone.call_id))  # the party left while voicedock was down

    events = PbxEventRecorder()
    async with make_pbx(fake, dids={DID}) as second:
        await second.start(events)
        assert await second.adopt_call(outbound.call_id, None)
        assert await second.adopt_call(inbound_id, inbound_leg)
        assert not await second.adopt_call(gone.call_id, None)
        assert not await second.adopt_call(outbound.call_id, None)  # already this run's
        channel = fake.uuid_of(outbound.call_id)
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
