"""The node's speech recognition: every call's offline transcriptions in one bounded pool, and
the measure that admission control reads.

``NodeRecognition`` (one per process, owned by the call runner) serves every call's local STT
(a ``LocalStt``: offline Whisper) from one model and one ``WorkerPool`` sized to the cores,
instead of a thread per transcription contending for the model. What a call transcribes goes
through ``speech_for(stt)``, a ``PooledStt``: the final transcript of a turn (and a turn
transcribed once it ended) is ``DUE``, a caller waits for it; the streaming recognizer's
interims and speculative finals are queued ``AHEAD`` (``queue``) and promoted when the final
turns out to be the speculative one (``streaming_recognition.py``). So under load the
transcriptions nobody waits for yet are the ones delayed, not the finals. The turn model a
call asks at the caller's pauses (``predict_turn``, ``turn_detection.py``) and the detection of
the language a caller turn is in (``detect_language``, ``language.py``) run in the same pool,
``DUE``: the caller's endpointing, and the reply, wait for them.

Admission control (``admits``): while transcriptions wait longer than ``admission_wait_s``
for a worker (``WorkerPool.wait_s``: the oldest waiting one's age, or the longest wait of those
started in the last seconds; interims and speculative finals included: one that comes late
makes the caller's endpointing wait for its hint, or the final start from scratch), the
recognizer has more work than its cores carry and the calls already on it are getting slower;
the node refuses new calls that would use it (``calls/speech_admission.py``) until the waits are
back under the bound. Cloud STT is neither pooled
nor counted: its calls are never refused for it.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

from voicedock.pipeline.pools.worker_pool import Job, Priority, WorkerPool
from voicedock.pipeline.providers.base import (
    DetectedLanguage,
    LanguageDetectingStt,
    LocalStt,
    LocalWordTimedStt,
    SpokenWord,
    Stt,
)

if TYPE_CHECKING:
    from voicedock.pipeline.hearing.turn_model import TurnPrediction

MAX_RETRY_AFTER_S = 30


class NodeRecognition:
    def __init__(self, pool: WorkerPool, *, admission_wait_s: float = 0.0) -> None:
        """``admission_wait_s``: the longest wait of a transcription for a worker under which
        new calls are admitted (0: never refuse)."""
        self.pool = pool
        self.admission_wait_s = admission_wait_s

    def speech_for(self, stt: Stt) -> Stt:
        """The call's STT, through the node's pool when it is a local engine."""
        if isinstance(stt, LocalStt):
            return PooledStt(self, stt)
        return stt

    async def predict_turn(self, pcm: bytes, sample_rate: int) -> TurnPrediction:
        """The turn model's reading of a caller's pause (``turn_detection.py``): a caller
        waits for it (``DUE``), and its wait counts in admission control like a transcription's."""
        from voicedock.pipeline.hearing.turn_model import predict_blocking  # numpy: only when used

        return await self.pool.run(partial(predict_blocking, pcm, sample_rate), Priority.DUE)

    async def detect_language(
        self, detector: LanguageDetectingStt, pcm: bytes, sample_rate: int, among: frozenset[str]
    ) -> DetectedLanguage | None:
        """The language of a caller's turn (``language.py``), by the call's recognizer: the
        reply waits for it (``DUE``), and its wait counts in admission control like a
        transcription's."""
        work = partial(detector.detect_language_blocking, pcm, sample_rate, among)
        return await self.pool.run(work, Priority.DUE)

    def wait_s(self) -> float:
        """How long transcriptions wait for a worker now (``WorkerPool.wait_s``)."""
        return self.pool.wait_s()

    def admits(self) -> bool:
        """Whether a new call using the local recognizer may start now."""
        return self.admission_wait_s <= 0 or self.wait_s() < self.admission_wait_s

    def retry_after_s(self) -> int:
        """When a refused call is worth trying again: once the waits seen now left the pool's
        window, in whole seconds."""
        wait = self.wait_s()
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(self.pool.window_s + wait)))

    async def aclose(self) -> None:
        await self.pool.aclose()


class PooledStt:
    """A call's local STT through the node's recognition pool (an ``IncrementalStt``)."""

    def __init__(self, node: NodeRecognition, stt: LocalStt) -> None:
        self._node = node
        self.inner = stt

    @property
    def incremental(self) -> bool:
        return self.inner.incremental

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        return await self.transcribe_continuing(pcm, sample_rate, "")

    async def transcribe_continuing(self, pcm: bytes, sample_rate: int, prefix: str) -> str:
        """A transcription a caller waits for (``DUE``)."""
        if not pcm:
            return ""
        work = partial(self.inner.transcribe_blocking, pcm, sample_rate, prefix)
        return await self._node.pool.run(work, Priority.DUE)

    def queue(self, pcm: bytes, sample_rate: int, prefix: str) -> Job[str]:
        """A transcription nobody waits for yet (``AHEAD``): an interim, a speculative final."""
        work = partial(self.inner.transcribe_blocking, pcm, sample_rate, prefix)
        return self._node.pool.submit(work, Priority.AHEAD)

    async def word_times(self, pcm: bytes, sample_rate: int) -> list[SpokenWord]:
        """The words of ``pcm`` with their times, when the engine tells them (empty: it does
        not); queued behind the transcriptions callers wait for (``AHEAD``)."""
        inner = self.inner
        if not pcm or not isinstance(inner, LocalWordTimedStt):
            return []
        work = partial(inner.word_times_blocking, pcm, sample_rate)
        return await self._node.pool.run(work, Priority.AHEAD)

    async def aclose(self) -> None:
        await self.inner.aclose()
