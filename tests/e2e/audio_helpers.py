"""Helpers of the audio end-to-end tests: offline speech in and out, lab recordings, VAD, and
the call's transcript as a user reads it from ``GET /calls/{id}``.

The speech engines (Piper, faster-whisper with the packaged weights) are required: without them
the tests skip locally and fail under CI (``CI=true``), like the lab itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voicedock.domain.audio import ULAW
from voicedock.media.codecs import decode, encode
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector
from voicedock.pipeline.providers.base import ProviderUnavailableError
from voicedock.pipeline.providers.piper_tts import PiperTts, packaged_voice, piper_available
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock.pipeline.providers.whisper.weights import ensure_model_dir
from voicedock_lab.utterances import APPOINTMENT, SOUND_RATE, TALK_OVER, synthesize_pcm

UTTERANCE_PARTY = "+31612345673"
TALK_OVER_PARTY = "+31612345674"
SILENT_PARTY = "+31612345675"
PRIVATE_DETAILS_PARTY = "+31612345661"  # says a card number, an e-mail address, a birth date
UTTERANCE_TEXT = APPOINTMENT.text
TALK_OVER_TEXT = TALK_OVER.text
RATE = SOUND_RATE

TERMINAL = ("ended", "failed")

_WORD = re.compile(r"[a-z]+")


def require_offline_speech() -> None:
    """Skip (fail under CI) unless Piper and the packaged Whisper weights are installed."""
    reason = None
    if not piper_available():
        reason = "Piper TTS or its packaged voice is not installed"
    else:
        try:
            ensure_model_dir()
        except ProviderUnavailableError as exc:
            reason = f"Whisper weights unavailable: {exc}"
    if reason is None:
        return
    message = f"offline speech unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


async def warm_offline_speech() -> None:
    """Load Whisper and Piper before the call, as a service does before its first call."""
    await WhisperStt().warm_up()
    await PiperTts().warm_up()


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def assert_heard(wanted: set[str], heard: str) -> None:
    """The far side heard ``wanted`` (as the offline recogniser transcribed it). Whisper may
    mishear one word of a longer line ("connecting" → "unconnecting"); two are not a slip."""
    missing = wanted - words(heard)
    allowed = 1 if len(wanted) >= 4 else 0
    assert len(missing) <= allowed, (sorted(missing), heard)


async def transcribe(pcm: bytes, rate: int = RATE) -> str:
    return await WhisperStt().transcribe(pcm, rate)


async def speak_ulaw(text: str) -> bytes:
    """``text`` spoken by Piper (deterministically) as µ-law at 8 kHz, the lab's wire format."""
    pcm = await asyncio.to_thread(synthesize_pcm, text, str(packaged_voice()))
    return encode(ULAW, np.frombuffer(pcm, dtype="<i2"))


def ulaw_to_pcm(data: bytes) -> bytes:
    return decode(ULAW, data).astype("<i2").tobytes()


def speech_seconds(pcm: bytes, rate: int = RATE) -> float:
    """Seconds of 20 ms frames webrtcvad calls speech (aggressiveness 2, -50 dBFS floor)."""
    vad = VoiceActivityDetector(VadConfig(sample_rate=rate, frame_ms=20))
    return sum(vad.process(pcm)) * 0.02


def read_recording(path: Path) -> tuple[bytes, int]:
    """A MixMonitor WAV → (16-bit PCM, rate); tolerant of sizes not yet patched at close."""
    data = path.read_bytes()
    pos, rate = 12, RATE
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk == b"fmt ":
            rate = struct.unpack_from("<I", data, pos + 12)[0]
        if chunk == b"data":
            pcm = data[pos + 8 :]
            return pcm[: len(pcm) - len(pcm) % 2], rate
        pos += 8 + size + (size & 1)
    raise AssertionError(f"{path.name}: no data chunk")


async def new_recording(
    directory: Path, pattern: str, before: set[Path], within: float = 10.0
) -> Path:
    """The file matching ``pattern`` that appeared after ``before``, once it stopped growing.

    MixMonitor closes its files a moment after the channel hangs up.
    """
    deadline = time.monotonic() + within
    last_size = -1
    while time.monotonic() < deadline:
        fresh = sorted(set(directory.glob(pattern)) - before)
        if len(fresh) > 1:
            raise AssertionError(f"more than one new recording: {[p.name for p in fresh]}")
        if fresh:
            size = fresh[0].stat().st_size
            if size == last_size and size > 44:
                return fresh[0]
            last_size = size
        await asyncio.sleep(0.3)
    names = sorted(p.name for p in directory.iterdir())
    raise AssertionError(f"no finished recording {pattern} within {within} s: {names}")


def wait_finished(path: Path, within: float = 10.0) -> Path:
    """``path`` once the PBX finished it (its size settled: MixMonitor and FreeSWITCH's
    record_session close their files after the hang-up, and patch the header's sizes then).
    Blocking: for a test that is not a coroutine."""
    deadline, last = time.monotonic() + within, -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else -1
        if size > 44 and size == last:
            return path
        last = size
        time.sleep(0.25)
    raise AssertionError(f"{path.name}: no finished recording within {within} s")


async def read_finished_recording(path: Path, within: float = 10.0) -> tuple[bytes, int]:
    """A known party's recording as (PCM, rate), once the PBX finished it (``wait_finished``)."""
    return read_recording(await asyncio.to_thread(wait_finished, path, within))


async def read_new_recording(
    directory: Path, pattern: str, before: set[Path], within: float = 10.0
) -> tuple[bytes, int]:
    """What the party heard: its finished new recording (``new_recording``) as (PCM, rate)."""
    return read_recording(await new_recording(directory, pattern, before, within))


# ---- the transcript, as the API shows it -----------------------------------------------------


def transcript(call: dict[str, Any], role: str | None = None) -> list[dict[str, Any]]:
    """The call's ``transcript`` events (stored as each message is final), in order."""
    found = [e["data"] for e in call["events"] if e["type"] == "transcript"]
    return [t for t in found if role is None or t["role"] == role]


async def wait_transcript(
    live: Any,
    call_id: str,
    matches: Callable[[dict[str, Any]], bool],
    within: float = 20.0,
) -> dict[str, Any]:
    """The first transcript message ``matches`` accepts (fails if the call ends first).

    ``live``: the running service (``e2e.conftest.LiveService``, a user-path backend): anything
    with the app's ``client`` and ``auth()``.
    """
    seen: list[dict[str, Any]] = []

    async def found() -> bool:
        resp = await live.client.get(f"/calls/{call_id}", headers=live.auth())
        assert resp.status == 200, await resp.text()
        call = await resp.json()
        seen[:] = transcript(call)
        if any(matches(t) for t in seen):
            return True
        assert call["status"] not in TERMINAL, (call["end_reason"], seen)
        return False

    try:
        async with asyncio.timeout(within):
            while not await found():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"no such message within {within} s; transcript: {seen}") from None
    return next(t for t in seen if matches(t))


async def wait_spoken(live: Any, call_id: str, text: str, within: float = 20.0) -> dict[str, Any]:
    """The assistant's message ``text`` once spoken to its end: its transcript message, stored
    once the PBX played its last frame (Asterisk's mark; FreeSWITCH: its playout clock), and
    not ``interrupted``. All that remains is the audio's way to the party (RTP on loopback)."""
    said = await wait_transcript(
        live, call_id, lambda m: m["role"] == "assistant" and m["content"] == text, within
    )
    assert not said["interrupted"], said  # cut short: the party did not hear all of it
    return said
