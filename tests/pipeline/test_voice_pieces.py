"""A cloud voice streams its answer in pieces (OpenAI's 24 kHz PCM, 200 ms at a time): what
the dialogue queues for the caller, at the call's 8 kHz, is the whole answer resampled at once,
sample for sample within a rounding step, with nothing lost at the end. Resampled piece by
piece, each piece's edges dipped toward silence: a click wherever the answer was cut."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from voicedock.pipeline.audio import resample_pcm16
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts

from .fakes import FakeHandle, FakeLlm, FakeSink, FakeStt
from .test_turn_engine import config, until

pytestmark = pytest.mark.unit

VOICE_RATE = 24_000
PIECE = VOICE_RATE * 2 // 5  # bytes: 200 ms, as a streaming voice sends them


def speech_like(seconds: float) -> bytes:
    """A tone with upper partials (as a voice has), loud enough to hear a seam in."""
    t = np.arange(int(VOICE_RATE * seconds)) / VOICE_RATE
    wave = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220, 660, 1540, 2860), 1))
    return (5000 * wave).astype("<i2").tobytes()


class StreamingVoice:
    """A cloud voice: 24 kHz PCM, each sentence's answer in 200 ms pieces."""

    sample_rate = VOICE_RATE

    def __init__(self) -> None:
        self.answers: list[bytes] = []

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        pcm = speech_like(0.06 * len(text))
        self.answers.append(pcm)
        for start in range(0, len(pcm), PIECE):
            yield pcm[start : start + PIECE]

    async def aclose(self) -> None:
        return None


class KeepingSink(FakeSink):
    """The fake sink, keeping what was queued."""

    def __init__(self) -> None:
        super().__init__(instant=True)
        self.pcm = bytearray()

    async def play(self, pcm: bytes, sample_rate: int) -> FakeHandle:
        self.pcm += pcm
        return await super().play(pcm, sample_rate)


async def test_a_voice_streamed_in_pieces_is_queued_without_a_seam() -> None:
    voice, sink = StreamingVoice(), KeepingSink()
    cfg = config(first_message="Hello, this is the dental clinic. How can I help you today?")
    async with TurnEngine(TurnParts(stt=FakeStt(), llm=FakeLlm([]), tts=voice, sink=sink), cfg):
        await until(lambda: len(voice.answers) == 2 and sink.audio_bytes >= 2 * 8000)
        await until(lambda: len(sink.pcm) == sum(len(a) for a in voice.answers) // 3)
    assert set(sink.rates) == {8000}
    whole = b"".join(resample_pcm16(answer, VOICE_RATE, 8000) for answer in voice.answers)
    queued = np.frombuffer(bytes(sink.pcm), dtype="<i2").astype(int)
    expected = np.frombuffer(whole, dtype="<i2").astype(int)
    assert len(queued) == len(expected)  # nothing held back at a sentence's end
    assert np.abs(queued - expected).max() <= 1
