"""Warm transfer on FreeSWITCH speaks a briefing to the agent before the decision window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest

from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from pbx.freeswitch.test_pbx_control import AGENT, agent_leg, answered_call
from pbx.freeswitch.test_pbx_outbound import PASSWORD, make_pbx
from voicedock.calls.transfers.agent import AgentDialogue
from voicedock.errors import ProviderError
from voicedock.pbx.base import PbxEventKind, TransferTarget
from voicedock.pbx.freeswitch.commands import UnsafeCommandValue, build_uuid_broadcast_tone
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx

pytestmark = pytest.mark.unit

Voice = Callable[[str], Awaitable[tuple[bytes, int]]]
BRIEFING = "Caller asks about an unpaid invoice."


def tone_voice(seconds: float, spoken: list[str] | None = None) -> Voice:
    async def voice(text: str) -> tuple[bytes, int]:
        if spoken is not None:
            spoken.append(text)
        t = np.arange(int(16000 * seconds)) / 16000
        return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes(), 16000

    return voice


async def broken_voice(text: str) -> tuple[bytes, int]:
    raise ProviderError("no voice installed")


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password=PASSWORD) as fs:
        yield fs


@pytest.fixture
async def events() -> PbxEventRecorder:
    return PbxEventRecorder()


async def running(
    fake: FakeFreeswitch,
    events: PbxEventRecorder,
    voice: Voice,
    warm_transfer_timeout: int = 30,
    *,
    voice_decision: bool = True,
) -> FreeswitchPbx:
    dialogue = AgentDialogue(synthesize=voice)
    pbx = make_pbx(fake, warm_transfer_timeout=warm_transfer_timeout, warm_dialogue=dialogue)
    pbx.warm.voice_decision = voice_decision
    await pbx.start(events)
    return pbx


def warm_with_briefing() -> TransferTarget:
    return TransferTarget(
        AGENT, trunk_endpoint="carrier2", mode="warm", extra={"briefing": BRIEFING}
    )


async def until(condition: Callable[[], bool], within: float = 3.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.01)


def index_of(commands: list[str], prefix: str) -> int:
    return next(i for i, c in enumerate(commands) if c.startswith(prefix))


async def test_briefing_is_played_to_the_agent_before_the_digit_and_the_bridge(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    spoken: list[str] = []
    async with await running(fake, events, voice=tone_voice(0.3, spoken)) as pbx:
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: bool(fake.queued(leg)))
        pressed_at = len(fake.commands)
        fake.press_digit(leg, "1")
        done = await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert done.detail == AGENT  # the destination: the call record's transferred_to
    assert spoken == [
        f"{BRIEFING} Press 1 or say yes to take the call; press 2 or say no to decline."
    ]
    commands = fake.commands
    originate = index_of(commands, f"bgapi originate {{origination_uuid={leg},")
    stream = index_of(commands, f"api uuid_audio_stream {leg} start ")
    playback = index_of(commands, f"sendmsg {leg}")
    bridge = index_of(commands, f"api uuid_bridge {fake.uuid_of(call_id)} {leg}")
    assert originate < stream < playback < pressed_at <= bridge
    # The agent's own stream is stopped before the two legs are joined.
    assert index_of(commands, f"api uuid_audio_stream {leg} stop") < bridge
    heard = np.frombuffer(fake.played_audio(leg), dtype="<i2")
    assert len(heard) == pytest.approx(0.3 * 16000, abs=320)  # the whole briefing, at 16 kHz
    assert np.sqrt(np.mean(heard.astype(np.float64) ** 2)) > 3000  # speech, not silence
    assert not fake.queued(fake.uuid_of(call_id))  # nothing played to the caller


async def test_unsynthesizable_briefing_beeps_and_the_agent_can_still_accept(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    # Voice answers off: with neither a voice to play nor one to hear, no stream is started.
    async with await running(fake, events, voice=broken_voice, voice_decision=False) as pbx:
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: bool(fake.queued(leg)))
        fake.press_digit(leg, "1")
        await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert (leg, "tone_stream://L=2;%(400,200,880)") in fake.broadcasts
    assert not any(c.startswith(f"api uuid_audio_stream {leg}") for c in fake.commands)


async def test_an_adapter_without_a_warm_dialogue_beeps_and_a_digit_decides(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    # No dialogue handed down (a FreeswitchPbx built by hand): nothing to say, nobody listening.
    async with make_pbx(fake, warm_dialogue=None) as pbx:
        await pbx.start(events)
        assert pbx.warm.voice_decision is True
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: (leg, "tone_stream://L=2;%(400,200,880)") in fake.broadcasts)
        fake.press_digit(leg, "1")
        await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert not any(c.startswith(f"api uuid_audio_stream {leg}") for c in fake.commands)


async def test_briefing_without_an_audio_stream_beeps(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    fake.audio_stream_loaded = False
    async with await running(fake, events, voice=tone_voice(0.3)) as pbx:
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: bool(fake.queued(leg)))
        fake.press_digit(leg, "1")
        await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert fake.broadcasts == [(leg, "tone_stream://L=2;%(400,200,880)")]
    assert f"api uuid_audio_stream {leg} start" in " ".join(fake.commands)


async def test_agent_who_stays_silent_after_the_briefing_times_out(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    voice = tone_voice(0.5)
    async with await running(fake, events, voice=voice, warm_transfer_timeout=1) as pbx:
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        answered_at = time.monotonic()
        failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED, timeout=5)
        waited = time.monotonic() - answered_at
    assert failed.detail == "warm-no-decision"
    assert waited >= 1.4  # the window opened only after the 0.5 s briefing
    assert f"api uuid_kill {leg} NORMAL_CLEARING" in fake.commands
    assert fake.uuid_of(call_id) in fake.channels  # the caller stays with the assistant


async def test_digit_during_a_long_briefing_cuts_it_short(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    async with await running(fake, events, voice=tone_voice(5.0)) as pbx:
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: bool(fake.queued(leg)))
        started = time.monotonic()
        fake.press_digit(leg, "2")
        failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-declined"
    assert time.monotonic() - started < 2.0  # not after the 5 s briefing
    assert leg in fake.breaks  # what was queued of the briefing is dropped
    assert f"api uuid_kill {leg} NORMAL_CLEARING" in fake.commands


async def test_agent_hanging_up_during_the_briefing_returns_the_caller(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    async with await running(fake, events, voice=tone_voice(5.0)) as pbx:
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: bool(fake.queued(leg)))
        fake.remote_hangup(leg)
        failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-agent-hung-up"
    assert fake.uuid_of(call_id) in fake.channels
    assert PbxEventKind.TRANSFERRED not in events.kinds(call_id)


def test_beep_command_is_built_from_numbers_only() -> None:
    uid = "0b7e3d7c-9c39-4b1e-8f5e-2f4f1c1f0a11"
    assert build_uuid_broadcast_tone(uid) == (
        f"uuid_broadcast {uid} tone_stream://L=2;%(400,200,880) aleg"
    )
    for bad in ({"hz": 0}, {"on_ms": 10_001}, {"repeats": -1}):
        with pytest.raises(UnsafeCommandValue):
            build_uuid_broadcast_tone(uid, **bad)
    with pytest.raises(UnsafeCommandValue):
        build_uuid_broadcast_tone("not-a-uuid")
