"""An assistant's ``noise_suppression``: its calls' caller audio is denoised (RNNoise) before the
VAD and the STT hear it. Proven where a user stands: assistants saved through REST, calls
placed with them (``POST /calls/outbound``) and answered over real media, the caller speaking
in street-like noise, and what the STT then received; the setting refused out of bounds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.spoken_calls import FRAME, SPEECH, SpokenCalls, spoken_calls
from fakes.world import make_settings
from pipeline.synth import espeak
from voicedock.media.codecs import ulaw_encode

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

RATE = 8000
SAID = "I would like to book an appointment for Tuesday morning, please."


def noisy_words() -> np.ndarray:
    """Street-like (pink) noise 5 dB under the words, from 1 s before them to 1 s after."""
    spoken = espeak(SAID, RATE)
    if spoken is None:
        pytest.skip("espeak-ng is not installed")
    words = np.frombuffer(spoken, dtype="<i2").astype(np.float64)
    clean = np.concatenate((np.zeros(RATE), words, np.zeros(RATE)))
    spectrum = np.fft.rfft(np.random.default_rng(7).standard_normal(len(clean)))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, len(clean))
    noise *= np.std(words) / np.std(noise) / 10 ** (5 / 20)
    return np.clip(np.rint(clean + noise), -32768, 32767).astype(np.int16)


async def heard_by_stt(app: SpokenCalls, body: dict[str, Any], caller: np.ndarray) -> bytes:
    """The audio the STT received from one answered call whose caller sends ``caller`` (then
    silence); the call then ended."""
    received: list[bytes] = []
    transcribe = app.stt.transcribe

    async def keeping(pcm: bytes, sample_rate: int) -> str:
        received.append(pcm)
        return await transcribe(pcm, sample_rate)

    app.stt.transcribe = keeping  # type: ignore[method-assign]
    call_id = await app.answered(body)
    channel = app.fake.channel()
    async with asyncio.timeout(5):  # the greeting, played
        while not channel.played:
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.3)
    wire = ulaw_encode(np.concatenate((caller, np.zeros(RATE, np.int16))))
    for start in range(0, len(wire) - FRAME + 1, FRAME):
        await channel.ws.send_bytes(wire[start : start + FRAME])
        await asyncio.sleep(0.001)
    async with asyncio.timeout(10):
        while not received:
            await asyncio.sleep(0.01)
    await app.ended(call_id)
    return b"".join(received)


async def test_an_assistants_calls_hear_the_caller_denoised(tmp_path: Path) -> None:
    caller = noisy_words()
    sections = {"stt_config": {"provider": SPEECH}, "tts_config": {"provider": SPEECH}}
    heard: dict[bool | None, bytes] = {}
    for choice in (True, False, None):  # None: left out, the node's default (off)
        settings = make_settings(f"sqlite:///{tmp_path / f'noise-{choice}.db'}")
        async with spoken_calls(settings) as app:  # a PBX of its own: the call's one channel
            setting = {} if choice is None else {"noise_suppression": choice}
            body = {"name": "Desk", "first_message": "Hello.", **sections, **setting}
            status, saved = await app.send("POST", "/assistants", body)
            assert status == 201, saved
            assert saved.get("noise_suppression") == choice
            heard[choice] = await heard_by_stt(app, {"assistant_id": saved["id"]}, caller)
    assert all(heard.values())  # each call's caller was heard
    words_s = (len(caller) / RATE) - 2  # the words, between 1 s of noise before and after
    seconds = {choice: len(pcm) / 2 / RATE for choice, pcm in heard.items()}
    # Without it, the noise before and after the words is heard as part of the turn: the STT
    # receives it all; with it, the turn is the words (the pre-roll and the end's silence).
    assert seconds[False] > words_s + 1.8, seconds
    assert seconds[True] < words_s + 1.2, seconds
    assert seconds[None] == seconds[False]  # left out: the node's default, off
    noise_before = np.frombuffer(heard[False], dtype="<i2")[RATE // 2 : RATE]
    assert np.std(noise_before.astype(np.float64)) > 500  # what the STT heard as the caller


@pytest.mark.parametrize("value", ["yes", 1, {"enabled": True}])
async def test_noise_suppression_is_true_false_or_null(tmp_path: Path, value: object) -> None:
    async with spoken_calls(make_settings(f"sqlite:///{tmp_path / 'noise.db'}")) as app:
        status, refused = await app.send(
            "POST", "/assistants", {"name": "Desk", "noise_suppression": value}
        )
        assert status == 400, refused
        assert refused["message"].startswith("noise_suppression must be true or false")
        status, saved = await app.send("POST", "/assistants", {"name": "Desk"})
        assert status == 201, saved
        status, patched = await app.send(
            "PATCH", f"/assistants/{saved['id']}", {"noise_suppression": True}
        )
        assert (status, patched["noise_suppression"]) == (200, True), patched
        status, patched = await app.send(
            "PATCH", f"/assistants/{saved['id']}", {"noise_suppression": None}
        )
        assert status == 200, patched
        assert "noise_suppression" not in patched  # back to the node's default
