"""FreeswitchPbx control: warm transfer (agent leg, accept with 1), restart detection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from pbx.freeswitch.live_service import until
from pbx.freeswitch.test_pbx_outbound import PASSWORD, make_pbx, request
from voicedock.errors import PbxError
from voicedock.pbx.base import PbxEventKind, TransferTarget
from voicedock.pbx.causes import freeswitch_cause
from voicedock.pbx.freeswitch.boot_clock import BootClock, parse_uptime
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx

pytestmark = pytest.mark.unit

AGENT = "+15558880000"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as fs:
        yield fs


@pytest.fixture
async def started(fake: FakeFreeswitch) -> AsyncIterator[tuple[FreeswitchPbx, PbxEventRecorder]]:
    recorder = PbxEventRecorder()
    async with make_pbx(fake) as pbx:
        await pbx.start(recorder)
        yield pbx, recorder


async def answered_call(pbx: FreeswitchPbx, events: PbxEventRecorder) -> str:
    call = request()
    await pbx.originate(call)
    await events.wait_for(call.call_id, PbxEventKind.ANSWERED)
    return call.call_id


async def agent_leg(fake: FakeFreeswitch) -> str:
    async with asyncio.timeout(2):
        while True:
            leg = next(
                (u for u, c in fake.channels.items() if c.destination == AGENT and c.answered),
                None,
            )
            if leg is not None:
                return leg
            await asyncio.sleep(0.01)


def warm(destination: str = AGENT) -> TransferTarget:
    return TransferTarget(destination, trunk_endpoint="carrier2", mode="warm")


async def test_warm_transfer_accepted_with_1_bridges_the_caller(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, warm())
    leg = await agent_leg(fake)
    originate = [c for c in fake.commands if "originate" in c][-1]
    assert f"origination_uuid={leg}," in originate
    assert "origination_caller_id_number=+15557654321" in originate  # our number on the call
    assert originate.endswith(f"sofia/gateway/carrier2/{AGENT} &park()")
    assert PbxEventKind.TRANSFERRED not in events.kinds(call_id)  # not before the agent accepts
    fake.press_digit(leg, "1")
    done = await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert done.detail == AGENT  # the destination: the call record's transferred_to
    assert f"api uuid_bridge {fake.uuid_of(call_id)} {leg}" in fake.commands
    assert f"api uuid_break {fake.uuid_of(call_id)} all" in fake.commands
    kills = len([c for c in fake.commands if "uuid_kill" in c])
    await pbx.hangup(call_id)  # the caller belongs to the agent now
    assert len([c for c in fake.commands if "uuid_kill" in c]) == kills
    # Either side hanging up ends the other (else the agent would sit in park alone).
    caller = fake.uuid_of(call_id)
    for channel in (caller, leg):
        assert f"api uuid_setvar {channel} hangup_after_bridge true" in fake.commands
    fake.remote_hangup(caller)
    assert leg not in fake.channels


async def accepted_until_uuid_bridge(
    fake: FakeFreeswitch, pbx: FreeswitchPbx, events: PbxEventRecorder
) -> tuple[str, str]:
    """A warm transfer the agent accepted, up to uuid_bridge's +OK (the bridge forms 0.3 s
    later): the call id and the agent leg."""
    fake.bridge_delay = 0.3
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, warm())
    leg = await agent_leg(fake)
    fake.press_digit(leg, "1")
    await until(lambda: any("uuid_bridge" in c for c in fake.commands))
    return call_id, leg


async def test_warm_transfer_is_not_reported_before_freeswitch_bridges(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id, leg = await accepted_until_uuid_bridge(fake, pbx, events)
    await asyncio.sleep(0.1)  # +OK came back; the bridge has not formed yet
    assert PbxEventKind.TRANSFERRED not in events.kinds(call_id)
    await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert fake.bridged[fake.uuid_of(call_id)] == leg


async def test_warm_transfer_agent_gone_before_the_bridge_forms_keeps_the_call(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id, leg = await accepted_until_uuid_bridge(fake, pbx, events)
    caller = fake.uuid_of(call_id)
    fake.remote_hangup(leg)  # after uuid_bridge's +OK, before the bridge
    failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-agent-hung-up"
    assert PbxEventKind.TRANSFERRED not in events.kinds(call_id)
    assert caller in fake.channels  # parked again, not hung up: the call goes on
    assert fake.channels[caller].variables["park_after_bridge"] == "false"  # reset once parked
    assert not any(f"uuid_audio_stream {caller} stop" in c for c in fake.commands)


async def test_warm_transfer_declined_kills_the_agent_leg(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, warm())
    leg = await agent_leg(fake)
    fake.press_digit(leg, "2")
    failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-declined"
    assert f"api uuid_kill {leg} NORMAL_CLEARING" in fake.commands
    assert leg not in fake.channels
    assert fake.uuid_of(call_id) in fake.channels  # the caller stays with the assistant
    assert not any("uuid_bridge" in c for c in fake.commands)


async def test_warm_transfer_to_a_busy_agent_fails_with_the_cause(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    fake.destinations[AGENT] = "busy"
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, warm())
    failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-no-answer"
    assert fake.uuid_of(call_id) in fake.channels


async def test_caller_hanging_up_during_warm_transfer_ends_the_agent_leg(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, warm())
    leg = await agent_leg(fake)
    fake.remote_hangup(fake.uuid_of(call_id))
    await events.wait_for(call_id, PbxEventKind.HANGUP)
    async with asyncio.timeout(2):
        while leg in fake.channels:
            await asyncio.sleep(0.01)
    assert PbxEventKind.TRANSFER_FAILED not in events.kinds(call_id)


async def test_warm_transfer_refuses_unsafe_targets(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    before = list(fake.commands)
    with pytest.raises(PbxError):
        await pbx.transfer(call_id, warm("+1555${system(id)}"))
    for unsafe in ("sales/other_context", "sales &park()", "a,b", "queue:", "sip:x@y z", "${x}"):
        with pytest.raises(PbxError):
            await pbx.transfer(call_id, TransferTarget(unsafe, internal=True, mode="warm"))
    assert fake.commands == before
    assert not pbx.warm.in_progress(call_id)


def internal(destination: str) -> TransferTarget:
    return TransferTarget(destination, internal=True, mode="warm")


async def loopback_agent_leg(fake: FakeFreeswitch, target: str) -> str:
    """The ``-a`` leg of the loopback pair voicedock originated to ``target``, answered."""
    async with asyncio.timeout(2):
        while True:
            leg = next(
                (
                    u
                    for u, c in fake.channels.items()
                    if c.channel_name == f"loopback/{target}-a" and c.answered
                ),
                None,
            )
            if leg is not None:
                return leg
            await asyncio.sleep(0.01)


async def test_warm_transfer_to_an_internal_target_dials_it_through_the_dialplan(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, internal("sales"))
    leg = await loopback_agent_leg(fake, "sales")
    originate = [c for c in fake.commands if "originate" in c][-1]
    assert originate.startswith(f"bgapi originate {{origination_uuid={leg},")
    assert "origination_caller_id_number=+15557654321" in originate
    assert "voicedock_warm=true" in originate
    assert originate.endswith("}loopback/sales/voicedock_transfer/XML &park()")
    assert fake.loopback_dials == ["sales/voicedock_transfer/XML"]
    b_leg = fake.channels[leg].partner
    assert b_leg is not None
    assert fake.channels[b_leg].variables["voicedock_warm"] == "true"
    assert PbxEventKind.TRANSFERRED not in events.kinds(call_id)
    fake.press_digit(leg, "1")  # the agent accepts, as with an E.164 agent
    done = await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert done.detail == "sales"
    caller = fake.uuid_of(call_id)
    assert f"api uuid_bridge {caller} {leg}" in fake.commands
    async with asyncio.timeout(2):  # loopback bows out: its legs go, the caller stays
        while leg in fake.channels or b_leg in fake.channels:
            await asyncio.sleep(0.01)
    assert caller in fake.channels
    assert f"api uuid_kill {leg} NORMAL_CLEARING" not in fake.commands
    assert events.kinds(call_id)[-1] is PbxEventKind.TRANSFERRED


@pytest.mark.parametrize("target", ["queue:support", "sip:alice@pbx.example.com", "1001"])
async def test_warm_transfer_to_queue_and_sip_targets_and_a_decline(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder], target: str
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, internal(target))
    leg = await loopback_agent_leg(fake, target)
    assert [c for c in fake.commands if "originate" in c][-1].endswith(
        f"}}loopback/{target}/voicedock_transfer/XML &park()"
    )
    b_leg = fake.channels[leg].partner
    fake.press_digit(leg, "2")
    failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-declined"
    assert f"api uuid_kill {leg} NORMAL_CLEARING" in fake.commands
    assert leg not in fake.channels
    assert b_leg not in fake.channels
    assert fake.uuid_of(call_id) in fake.channels
    assert not any("uuid_bridge" in c for c in fake.commands)


async def test_warm_transfer_to_a_busy_internal_target_fails_with_the_cause(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    fake.destinations["sales"] = "busy"
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, internal("sales"))
    failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-no-answer"
    assert fake.uuid_of(call_id) in fake.channels
    assert not [c for c in fake.channels.values() if c.channel_name.startswith("loopback/")]


async def test_fake_agent_that_accepts_by_itself(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    fake.agent_presses["sales"] = "1"
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, internal("sales"))
    done = await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert done.detail == "sales"


async def test_restart_fails_live_calls_with_pbx_restart(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    fake.restart()
    hangup = await events.wait_for(call_id, PbxEventKind.HANGUP)
    assert hangup.detail == "pbx-restart"
    restarted = await events.wait_for("", PbxEventKind.PBX_RESTARTED)
    assert events.events.index(restarted) < events.events.index(hangup)


async def test_reconnect_to_the_same_freeswitch_is_not_a_restart(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    call_id = await answered_call(pbx, events)
    fake.drop_connections()
    async with asyncio.timeout(2):
        while pbx.esl.reconnects < 1 or not pbx.esl.connected:
            await asyncio.sleep(0.01)
    await pbx.reconcile()
    assert events.kinds(call_id) == [PbxEventKind.RINGING, PbxEventKind.ANSWERED]
    assert all(e.kind is not PbxEventKind.PBX_RESTARTED for e in events.events)


def test_boot_clock_tells_a_restart_from_a_slow_reply() -> None:
    clock = BootClock()
    assert not clock.restarted(_up(10.0), sent=100.0, now=100.01)  # booted at 90
    clock.record()
    # The reply took 2.5 s (a busy event loop): the same FreeSWITCH, not a restart.
    assert not clock.restarted(_up(12.0), sent=101.0, now=103.5)
    clock.record()
    # A FreeSWITCH that started 3 s after the first (it ran for seconds only): a restart.
    assert clock.restarted(_up(1.0), sent=104.0, now=104.01)
    # Until its handling is done (``record``), the restart is seen again.
    assert clock.restarted(_up(1.2), sent=104.2, now=104.21)
    clock.record()
    assert not clock.restarted(_up(1.5), sent=104.5, now=104.52)


def _up(seconds: float) -> str:
    whole, milli = divmod(round(seconds * 1000), 1000)
    return f"UP 0 years, 0 days, 0 hours, 0 minutes, {whole} seconds, {milli} milliseconds\n"


def test_uptime_and_causes() -> None:
    status = "UP 1 year, 2 days, 3 hours, 4 minutes, 5 seconds, 6 milliseconds, 7 microseconds\n"
    assert parse_uptime(status) == pytest.approx(
        365 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5.006007
    )
    assert parse_uptime("UP 0 years, 0 days, 0 hours, 0 minutes, 1 second\n") == 1.0
    assert parse_uptime("-ERR no\n") is None
    assert parse_uptime("") is None
    assert freeswitch_cause("GATEWAY_DOWN") == 27
    assert freeswitch_cause("USER_BUSY") == 17
    assert freeswitch_cause("SOMETHING_NEW") is None


async def test_blind_transfer_waits_for_the_bridge_and_a_failed_bridge_keeps_the_call(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    pbx, events = started
    fake.destinations["+15550004860"] = "busy"
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, TransferTarget("+15550004860", trunk_endpoint="carrier2"))
    with pytest.raises(PbxError, match="in progress"):
        await pbx.transfer(call_id, TransferTarget("+15559990000"))
    failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "dialstatus=BUSY"
    assert PbxEventKind.TRANSFERRED not in events.kinds(call_id)
    assert fake.uuid_of(call_id) in fake.channels  # parked again: the assistant goes on
    await pbx.transfer(call_id, TransferTarget("+15559990000", trunk_endpoint="carrier2"))
    await events.wait_for(call_id, PbxEventKind.TRANSFERRED)


async def test_blind_transfer_at_the_answer_waits_for_the_originate_to_end(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    """FreeSWITCH gives the answered leg its &park() only when the originate job ends, after
    CHANNEL_ANSWER: a uuid_transfer sent in between is undone (the call parks again)."""
    pbx, events = started
    fake.job_after_answer = 0.3
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, TransferTarget("+15559990000", trunk_endpoint="carrier2"))
    await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert PbxEventKind.TRANSFER_FAILED not in events.kinds(call_id)
    assert fake.channels[fake.uuid_of(call_id)].lost_transfer_context is None


async def test_blind_transfer_answered_stops_the_audio_stream(
    fake: FakeFreeswitch, started: tuple[FreeswitchPbx, PbxEventRecorder]
) -> None:
    from voicedock.media.transport import CloseReason

    pbx, events = started
    call_id = await answered_call(pbx, events)
    async with pbx.call_media(call_id, media_format="slin") as media:
        await pbx.transfer(call_id, TransferTarget("+15559990000", trunk_endpoint="carrier2"))
        await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
        async with asyncio.timeout(2):
            while not media.closed:
                await asyncio.sleep(0.01)
        assert media.close_reason is CloseReason.PEER
    assert f"api uuid_audio_stream {fake.uuid_of(call_id)} stop" in fake.commands
    assert fake.uuid_of(call_id) in fake.channels  # the caller talks to the target now
