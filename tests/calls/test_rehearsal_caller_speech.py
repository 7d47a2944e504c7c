"""The simulated caller's ears in the node's recognition pool: what the caller leg heard is
transcribed behind every transcription a call waits for."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pipeline.test_recognition import BlockingStt
from voicedock.calls.rehearsal.caller_speech import caller_ears
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import SttConfig
from voicedock.pipeline.hearing.recognition import NodeRecognition
from voicedock.pipeline.pools.worker_pool import Priority, WorkerPool

pytestmark = pytest.mark.unit

RATE = 8000


def _pcm(ms: int) -> bytes:
    return bytes(2 * RATE * ms // 1000)


async def test_the_caller_leg_s_turn_is_transcribed_after_a_call_s_final() -> None:
    """Twenty test calls hear their greetings at once: the assistants' transcriptions of the
    callers' answers must not queue behind them. A busy pool of one worker; the caller leg's
    turn (1 s) queued first, a call's final (0.5 s) after it: the final runs first."""
    stt = BlockingStt(("heard",))

    def create(config: SttConfig) -> BlockingStt:
        return stt

    recognition = NodeRecognition(WorkerPool(1, name="recognition"))
    ears = caller_ears(recognition, SpeechSettings(), create)
    gate = threading.Event()
    try:
        recognition.pool.submit(lambda: gate.wait(10), Priority.DUE)  # the worker busy
        heard = asyncio.create_task(ears(_pcm(1000), RATE))
        await asyncio.sleep(0)
        final = asyncio.create_task(recognition.speech_for(stt).transcribe(_pcm(500), RATE))
        async with asyncio.timeout(5):
            while recognition.pool.waiting < 2:
                await asyncio.sleep(0.01)
    finally:
        gate.set()
    assert (await heard, await final) == ("heard", "heard")
    assert [ms for ms, _ in stt.calls] == [500, 1000]
    await recognition.aclose()
