"""The real offline engines with streaming recognition: Piper speaks in real time, Whisper
transcribes the turn while it is spoken, the final is ready about when endpointing decides.

Loads both models once (a few seconds on two CPU cores); each turn takes its own length.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest

from pipeline.engines import needs_offline_engines
from pipeline.fakes import FakeLlm, FakeSink, FakeTts
from pipeline.synth import frames, silence
from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.pipeline.audio import pcm16_to_float, resample_pcm16
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine, TurnParts
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.providers.registry import create_stt, create_tts
from voicedock.pipeline.providers.whisper.decoding import short_context_transcript
from voicedock.pipeline.providers.whisper.stt import WhisperStt, tokenizer_of

pytestmark = [pytest.mark.unit, needs_offline_engines]


async def piper(text: str, rate: int = 8000) -> bytes:
    tts = create_tts(TtsConfig(provider="piper"))
    try:
        pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
        return resample_pcm16(pcm, tts.sample_rate, rate)
    finally:
        await tts.aclose()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.fixture(scope="module")
def whisper() -> WhisperStt:
    stt = create_stt(SttConfig(provider="offline"))
    assert isinstance(stt, WhisperStt)
    return stt


async def test_the_guard_sends_a_looping_short_context_to_the_full_window(
    whisper: WhisperStt,
) -> None:
    await whisper.warm_up()
    audio = pcm16_to_float(await piper("Yes.", 16000))
    model = whisper._model()
    tokenizer = tokenizer_of(model, "en")
    # On 2 s of context Whisper-base loops on a lone "Yes." ("Yes. Yes. Yes. ..."): caught.
    looping = short_context_transcript(model, tokenizer, audio, min_frames=200, margin_frames=100)
    assert looping is None
    assert words(await whisper.transcribe(await piper("Yes."), 8000)) == ["yes"]


class Spy(WhisperStt):
    """Whisper, noting for each transcription whether the caller's turn was still open."""

    def __init__(self, turn_open: Callable[[], bool]) -> None:
        super().__init__()
        self.turn_open = turn_open
        self.started_in_turn: list[bool] = []

    async def transcribe_continuing(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        self.started_in_turn.append(self.turn_open())
        return await super().transcribe_continuing(pcm, sample_rate, prefix)


@pytest.mark.flaky(reruns=1)  # Piper's synthesis is stochastic: Whisper may mishear a word
async def test_the_streaming_final_is_the_utterance_and_ready_at_the_turn_end(
    whisper: WhisperStt,
) -> None:
    said = "I would like to book an appointment on Monday morning, if that is possible."
    spoken = await piper(said)
    await whisper.warm_up()
    config = ConversationConfig(
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=None),
    )
    llm, sink = FakeLlm(), FakeSink(instant=True)
    llm.replies = [["Sure."]]
    stt = Spy(lambda: conv._listener.endpointer.user_speaking)
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), config) as conv:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, frame in enumerate(frames(silence(300) + spoken + silence(1500))):
            conv.feed_audio(frame)  # in real time, as a phone line
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))
        async with asyncio.timeout(10):
            while not conv.latencies:
                await asyncio.sleep(0.02)
    (user,) = [e for e in conv.transcript if e.role == "user"]
    assert words(user.content) == words(said)
    # The turn was transcribed while it was open (an interim, the speculative final of the
    # pause): usually nothing is left to transcribe once endpointing decides. (On a loaded
    # machine an interim can still run when the caller pauses; then the final is redone.)
    assert stt.started_in_turn[0]
    (latency,) = conv.latencies
    # A finished sentence: the turn ended once its transcript said so, at the latest after
    # the usual 600 ms; the final was ready sooner than a whole-turn transcription on the
    # full window (the behaviour before) takes on this machine now.
    assert latency.endpointing_ms <= 600
    before = WhisperStt(SttConfig(encoder_context="full", streaming=False))
    began = loop.time()
    assert words(await before.transcribe(spoken, 8000)) == words(said)
    assert latency.stt_final_ms is not None
    assert latency.stt_final_ms < (loop.time() - began) * 1000
