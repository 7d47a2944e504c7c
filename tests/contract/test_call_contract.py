"""One call-level contract for every PBX backend: what the engine and the conversation rely on.

originate → RINGING/ANSWERED; our hang-up → HANGUP cause 16; the far end's hang-up → HANGUP;
failures → the same ``CallError`` whichever PBX; audio both ways through ``call_media`` (caller
frames arrive; what we play reaches the far end, proven by an echoing party); end-call by
the PBX with media attached (the media ends as PEER); blind transfer → TRANSFERRED (or
TRANSFER_FAILED with the call kept when the target is busy); a warm transfer asked at the
answer, while the media is being set up → TRANSFERRED; an inbound call to one of our
numbers is offered to the engine, answered once accepted, and carries audio both ways.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from contract.backends import Backend, sine
from voicedock.media.transport import CloseReason
from voicedock.pbx.base import InboundCall, PbxEventKind
from voicedock.pbx.causes import CallError, error_for_unanswered

pytestmark = pytest.mark.timeout(60)


async def answered(backend: Backend, role: str = "answers") -> str:
    call = backend.request(role)
    await backend.pbx.originate(call)
    await backend.events.wait(call.call_id, PbxEventKind.ANSWERED)
    return call.call_id


async def test_originate_answer_and_our_hangup(backend: Backend) -> None:
    call_id = await answered(backend)
    assert call_id in await backend.pbx.live_call_ids()
    await backend.pbx.hangup(call_id)
    hangup = await backend.events.wait(call_id, PbxEventKind.HANGUP)
    assert hangup.cause == 16
    await backend.pbx.hangup(call_id)  # idempotent
    assert len(backend.events.of(call_id, PbxEventKind.HANGUP)) == 1
    assert len(backend.events.of(call_id, PbxEventKind.ANSWERED)) == 1
    assert call_id not in await backend.pbx.live_call_ids()


async def test_far_end_hangs_up(backend: Backend) -> None:
    call_id = await answered(backend, "hangs-up")
    hangup = await backend.events.wait(call_id, PbxEventKind.HANGUP, within=15)
    assert hangup.cause == 16


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("busy", CallError.BUSY),
        ("congestion", CallError.CONGESTION),
        ("rejected", CallError.REJECTED),
        ("invalid", CallError.INVALID_NUMBER),
    ],
)
async def test_failures_map_to_the_same_call_errors(
    backend: Backend, role: str, expected: CallError
) -> None:
    call = backend.request(role)
    await backend.pbx.originate(call)
    hangup = await backend.events.wait(call.call_id, PbxEventKind.HANGUP, within=15)
    assert error_for_unanswered(hangup.cause, hangup.tech_cause) is expected
    assert not backend.events.of(call.call_id, PbxEventKind.ANSWERED)


def rms(frames: list[bytes]) -> float:
    pcm = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(pcm**2))) if len(pcm) else 0.0


async def test_audio_both_ways_through_call_media(backend: Backend) -> None:
    call_id = await answered(backend, "echo")
    async with backend.pbx.call_media(call_id, media_format="slin16") as media:
        assert media.format.name == "slin16"
        inbound = media.inbound_audio()
        async with asyncio.timeout(5):
            first = [await anext(inbound) for _ in range(10)]  # the caller's side arrives
        assert all(len(frame) == 640 for frame in first)
        t = np.arange(16000) / 16000
        tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2").tobytes()
        playback = media.play(tone)
        heard: list[bytes] = []
        async with asyncio.timeout(10):
            while rms(heard[-10:]) < 1000:  # the echo party sends our tone back
                heard.append(await anext(inbound))
        result = await asyncio.wait_for(playback.played(), 10)
        assert result.completed
        assert result.played_ms == pytest.approx(1000, abs=60)
    assert not backend.events.of(call_id, PbxEventKind.HANGUP)  # media gone, call stays
    await backend.pbx.hangup(call_id)
    await backend.events.wait(call_id, PbxEventKind.HANGUP)


async def test_end_call_with_media_attached(backend: Backend) -> None:
    """What the call runner does on end-call: the PBX hangs up, the media ends with the call."""
    call_id = await answered(backend)
    async with backend.pbx.call_media(call_id) as media:
        await backend.pbx.hangup(call_id)
        hangup = await backend.events.wait(call_id, PbxEventKind.HANGUP)
        assert hangup.cause == 16
        async with asyncio.timeout(5):
            while not media.closed:
                await asyncio.sleep(0.02)
        assert media.close_reason is CloseReason.PEER


async def test_blind_transfer(backend: Backend) -> None:
    call_id = await answered(backend)
    await backend.pbx.transfer(call_id, backend.transfer_target)
    await backend.events.wait(call_id, PbxEventKind.TRANSFERRED, within=15)
    assert not backend.events.of(call_id, PbxEventKind.TRANSFER_FAILED)


async def test_blind_transfer_to_a_busy_target_keeps_the_call(backend: Backend) -> None:
    call_id = await answered(backend)
    await backend.pbx.transfer(call_id, backend.busy_transfer_target)
    await backend.events.wait(call_id, PbxEventKind.TRANSFER_FAILED, within=15)
    assert not backend.events.of(call_id, PbxEventKind.TRANSFERRED)
    assert not backend.events.of(call_id, PbxEventKind.HANGUP)
    assert call_id in await backend.pbx.live_call_ids()
    await backend.pbx.hangup(call_id)
    await backend.events.wait(call_id, PbxEventKind.HANGUP)


async def test_warm_transfer_right_at_the_answer(backend: Backend) -> None:
    """As the engine's runner does it: the call's media is set up at the answer, and a transfer
    asked at once (before the media is up) still goes through."""
    call_id = await answered(backend)

    async def conversation() -> None:
        async with backend.pbx.call_media(call_id):
            await asyncio.Event().wait()  # until the test is done with it

    media = asyncio.create_task(conversation())
    try:
        await asyncio.sleep(0)  # the media's set-up is under way
        await backend.pbx.transfer(call_id, backend.warm_transfer_target)
        done = await backend.events.wait(call_id, PbxEventKind.TRANSFERRED, within=30)
        assert done.detail == backend.warm_transfer_target.destination
        assert not backend.events.of(call_id, PbxEventKind.TRANSFER_FAILED)
    finally:
        media.cancel()
        await asyncio.gather(media, return_exceptions=True)


def dominant_hz(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


async def test_inbound_call_is_accepted_and_carries_audio_both_ways(backend: Backend) -> None:
    inbound = backend.inbound
    call_id = backend.new_inbound_call_id()
    offered: list[InboundCall] = []

    async def accept(call: InboundCall) -> str:
        offered.append(call)
        return str(call_id)

    backend.pbx.set_inbound_handler(accept)
    caller = await inbound.call()
    await backend.events.wait(call_id, PbxEventKind.ANSWERED, within=15)
    assert [call.called for call in offered] == [inbound.did]
    async with backend.pbx.call_media(call_id, media_format="slin16") as media:
        frames = media.inbound_audio()
        await inbound.speak(caller)
        said: list[bytes] = []
        async with asyncio.timeout(10):
            while rms(said[-10:]) < 300:  # the caller's voice reaches us
                said.append(await anext(frames))
        playback = media.play(sine(440, 1.0, 16000))
        result = await asyncio.wait_for(playback.played(), 10)
        assert result.completed
    assert not backend.events.of(call_id, PbxEventKind.HANGUP)  # media gone, call stays
    await backend.pbx.hangup(call_id)
    await backend.events.wait(call_id, PbxEventKind.HANGUP)
    heard, rate = await inbound.heard(caller)
    assert dominant_hz(heard, rate) == pytest.approx(440, abs=15)  # our tone reached the caller
    window = rate // 50 * 2  # 20 ms of 16-bit samples
    loud = [rms([heard[i : i + window]]) > 1000 for i in range(0, len(heard), window)]
    assert sum(loud) * 0.02 == pytest.approx(1.0, abs=0.25)  # all of it, once
