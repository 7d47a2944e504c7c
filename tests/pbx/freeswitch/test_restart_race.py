"""FreeSWITCH restarts while calls are being placed: restart detection
ends only the calls from before the restart; a call originated on the fresh FreeSWITCH,
however soon after the reconnect, is never killed, and a call ended as lost has no channel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.world import DESTINATION, SUPPORT_ID
from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from pbx.freeswitch.live_service import TERMINAL, UserPathService, running_freeswitch_service, until
from pbx.freeswitch.test_pbx_control import answered_call
from pbx.freeswitch.test_pbx_outbound import PASSWORD, make_pbx, originates, request
from pbx.freeswitch.test_pbx_reconnect_inbound import DID, taking
from voicedock.calls.runner.pbx_verdict import PBX_VERDICT_S
from voicedock.domain.ids import new_inbound_call_id
from voicedock.errors import PbxUnavailable
from voicedock.pbx.base import InboundCall, PbxEventKind

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]

CALLER = "+31623731537"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as fs:
        yield fs


async def test_originate_right_after_the_reconnect_of_a_restart_is_not_killed(
    fake: FakeFreeswitch,
) -> None:
    events = PbxEventRecorder()
    async with make_pbx(fake) as pbx:
        await pbx.start(events)
        before = request()
        await pbx.originate(before)
        await events.wait_for(before.call_id, PbxEventKind.ANSWERED)

        fake.restart()
        async with asyncio.timeout(5):  # the first moment the new connection is usable
            while pbx.esl.reconnects < 1 or not pbx.esl.connected:
                await asyncio.sleep(0)
        sent = len(originates(fake))
        early = request()
        try:
            await pbx.originate(early)  # races restart detection: placed safely or not at all
        except PbxUnavailable:
            assert len(originates(fake)) == sent  # refused before anything was sent
        else:
            await events.wait_for(early.call_id, PbxEventKind.ANSWERED)
            await pbx.hangup(early.call_id)
        after = request()
        await pbx.originate(after)  # on the fresh FreeSWITCH
        await events.wait_for(after.call_id, PbxEventKind.ANSWERED)

        lost = await events.wait_for(before.call_id, PbxEventKind.HANGUP)
        assert lost.detail == "pbx-restart"
        await asyncio.sleep(0.3)  # a wrong pbx-restart would have reached the new call by now
        assert PbxEventKind.HANGUP not in events.kinds(after.call_id)
        for call in (early, after):
            killed = [e for e in events.events if e.call_id == call.call_id and e.detail]
            assert not [e for e in killed if e.detail == "pbx-restart"], killed
        assert fake.channel_of_call(after.call_id) is not None  # still up, and ours
        assert fake.channel_of_call(before.call_id) is None
        assert await pbx.live_call_ids() == {after.call_id}

        await pbx.hangup(after.call_id)
        assert (await events.wait_for(after.call_id, PbxEventKind.HANGUP)).cause == 16


async def test_a_freeswitch_that_crashes_seconds_after_starting_is_seen_restarted(
    fake: FakeFreeswitch,
) -> None:
    """The lab FreeSWITCH, started for the test, dies 2 s later: its calls still end as lost
    in a restart (``pbx-restart``), not as hung up while we were away."""
    fake.booted = time.monotonic()
    events = PbxEventRecorder()
    async with make_pbx(fake) as pbx:
        await pbx.start(events)
        call_id = await answered_call(pbx, events)
        await asyncio.sleep(max(0.0, fake.booted + 2.0 - time.monotonic()))

        fake.restart()
        lost = await events.wait_for(call_id, PbxEventKind.HANGUP)
        assert lost.detail == "pbx-restart"
        assert PbxEventKind.PBX_RESTARTED in [e.kind for e in events.events]


async def test_a_restart_seen_then_cut_short_by_a_dropped_link_still_ends_its_calls_lost(
    fake: FakeFreeswitch,
) -> None:
    """FreeSWITCH restarts; voicedock reconnects and reads its uptime (a restart), then the
    link drops before the lost calls are ended. The next reconnect, to the same FreeSWITCH,
    still ends them as lost in the restart (``pbx-restart``), not as calls FreeSWITCH no longer
    lists (``reconciled``): a restart counts as seen only once its calls are ended."""
    events = PbxEventRecorder()
    async with make_pbx(fake) as pbx:
        await pbx.start(events)
        call_id = await answered_call(pbx, events)
        fake.drop_at.add("show channels as json")  # reconcile's, sent once the uptime is read
        fake.restart()

        lost = await events.wait_for(call_id, PbxEventKind.HANGUP)
        assert not fake.drop_at  # the first reconcile was cut short
        assert pbx.esl.reconnects == 2
        assert lost.detail == "pbx-restart"
        assert PbxEventKind.PBX_RESTARTED in [e.kind for e in events.events]
        after = await answered_call(pbx, events)  # the fresh link is settled
        assert await pbx.live_call_ids() == {after}


async def test_a_caller_reaching_the_fresh_freeswitch_before_the_restart_check_is_kept(
    fake: FakeFreeswitch,
) -> None:
    """FreeSWITCH restarts and a caller reaches it as voicedock reconnects, before reconcile
    has read its uptime. The caller is taken once the restart is handled, as a call of the
    fresh FreeSWITCH: answered, never killed and ended as lost in the restart (``pbx-restart``)
    with the calls from before it."""
    events = PbxEventRecorder()
    offered: list[InboundCall] = []
    call_id = new_inbound_call_id(CALLER)

    async with make_pbx(fake, dids={DID}) as pbx:
        pbx.set_inbound_handler(taking(call_id, offered))
        await pbx.start(events)
        before = await answered_call(pbx, events)
        seen = pbx.esl.subscribe()  # what reaches voicedock, on every connection
        uptime_read = fake.hold("status")  # the restart check of the reconnect waits
        fake.restart()
        async with asyncio.timeout(5):
            while pbx.esl.reconnects < 1 or fake.commands[-1:] != ["api status"]:  # the check
                await asyncio.sleep(0.01)
            channel = fake.inbound_call(DID, caller=CALLER)
            async for event in seen:  # the caller's park reached voicedock
                if event.name == "CHANNEL_PARK" and event.unique_id == channel:
                    break
        # Before the check: an adapter that took the caller now has done so by then.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.2):
                while not offered:
                    await asyncio.sleep(0.01)
        uptime_read.set()

        lost = await events.wait_for(before, PbxEventKind.HANGUP)
        assert lost.detail == "pbx-restart"
        await events.wait_for(call_id, PbxEventKind.ANSWERED)
        assert offered == [InboundCall(channel, CALLER, DID)]
        assert PbxEventKind.HANGUP not in events.kinds(call_id)
        assert f"api uuid_kill {channel} NORMAL_CLEARING" not in fake.commands
        assert fake.channels[channel].answered
        assert await pbx.live_call_ids() == {call_id}


async def _talking_call(live: UserPathService) -> tuple[str, str]:
    """A call placed over REST, answered, its conversation on the audio stream: (id, uuid)."""
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    status, reply = await live.post("/calls/outbound", body)
    assert status == 200, reply
    call_id = str(reply["call_id"])
    await live.wait_status(call_id, ("in-progress",))
    channel = live.far_end.channel_of(call_id)

    def talking() -> bool:
        running = live.service.runner.served.get(call_id)
        return running is not None and running.live is not None

    await until(talking)
    return call_id, channel


async def test_a_call_up_when_freeswitch_crashes_ends_failed_pbx_restart(tmp_path: Path) -> None:
    """Over REST: the audio stream drops while FreeSWITCH is down for 3 s (as on the lab), yet
    the call ends as on Asterisk, ``failed`` with ``pbx-restart``, not ``ended``/``media-lost``."""
    async with running_freeswitch_service(tmp_path) as live:
        call_id, _ = await _talking_call(live)
        live.far_end.fake.restart(down_for=3.0)
        # Back after 3 s: the Event Socket reconnects within 7 s of the crash, however its
        # backoff's draws fall (tests/test_backoff.py), and the restart check ends the call.
        ended = await live.wait_status(call_id, TERMINAL, within=10.0)
        assert (ended["status"], ended["error"], ended["end_reason"]) == (
            "failed",
            "pbx-restart",
            None,
        )


async def test_a_lost_audio_stream_alone_still_ends_the_call_media_lost(tmp_path: Path) -> None:
    """The stream's websocket closes, FreeSWITCH and the channel live on: ``media-lost``, and
    the channel is hung up at once (FreeSWITCH still has the call: no wait for a verdict)."""
    async with running_freeswitch_service(tmp_path) as live:
        call_id, channel = await _talking_call(live)
        started = time.monotonic()
        live.far_end.fake.streams_by_uuid[channel].stop()
        ended = await live.wait_status(call_id, TERMINAL)
        assert (ended["status"], ended["error"], ended["end_reason"]) == (
            "ended",
            None,
            "media-lost",
        )
        assert live.far_end.killed(channel)
        assert time.monotonic() - started < PBX_VERDICT_S / 2
