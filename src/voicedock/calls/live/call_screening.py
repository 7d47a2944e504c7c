"""A call answered by a call-screening assistant: waiting for the person behind it.

Once the screener heard the screening message, ``ScreenerWait`` is fed the callee's audio
(``hear``) and cuts it into utterances (webrtcvad: speech, then ``UTTERANCE_END_MS`` of
silence); each is transcribed with the call's STT and read (``pipeline/hearing/call_screening.py``):
the screener declining ends the wait ``declined``, the screener still talking is waited
through, anything else is the person who picked up (``answered``). Nobody within ``wait_s``
of callee audio: ``timeout``. Utterances are read one at a time, in order, as tasks of the
call's supervisor; ``outcome`` is awaited by no one: ``on_outcome`` is called once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final, Literal

from voicedock.aio import Coro, Supervisor
from voicedock.pipeline.hearing.call_screening import DECLINED, PERSON, screener_reply
from voicedock.pipeline.hearing.vad import VadConfig, VoiceActivityDetector
from voicedock.pipeline.providers.base import ProviderError, Stt

log = logging.getLogger("voicedock.calls")

Outcome = Literal["answered", "declined", "timeout"]
ANSWERED: Final = "answered"
TIMEOUT: Final = "timeout"
UTTERANCE_END_MS = 600  # silence after speech that ends an utterance
SPEECH_MIN_MS = 200  # shorter speech (a click, a breath) is not an utterance
UTTERANCE_MAX_MS = 15_000  # a longer one is read as it stands
FRAME_MS = 20


class ScreenerWait:
    def __init__(
        self,
        stt: Stt,
        sample_rate: int,
        wait_s: float,
        *,
        tasks: Supervisor,
        on_outcome: Callable[[Outcome, int], Coro[None]],
    ) -> None:
        """``on_outcome(outcome, at_ms)`` runs once, ``at_ms`` the callee audio heard since
        the wait began."""
        self._stt, self._rate, self._tasks = stt, sample_rate, tasks
        self._wait_ms = int(wait_s * 1000)
        self._on_outcome = on_outcome
        self._vad = VoiceActivityDetector(VadConfig(sample_rate=sample_rate, frame_ms=FRAME_MS))
        self._frame_bytes = sample_rate * FRAME_MS // 1000 * 2
        self._pending = b""
        self._utterance: list[bytes] = []
        self._speech_ms = 0
        self._silence_ms = 0
        self._now_ms = 0
        self._reading = asyncio.Lock()  # one utterance read at a time, in order
        self.outcome: Outcome | None = None

    def hear(self, pcm: bytes) -> None:
        """Callee audio (16-bit PCM at ``sample_rate``), any chunking."""
        data = self._pending + pcm
        whole = len(data) - len(data) % self._frame_bytes
        self._pending = data[whole:]
        for start in range(0, whole, self._frame_bytes):
            if self.outcome is not None:
                return
            self._frame(data[start : start + self._frame_bytes])

    def _frame(self, frame: bytes) -> None:
        self._now_ms += FRAME_MS
        if self._vad.is_speech(frame):
            self._utterance.append(frame)
            self._speech_ms += FRAME_MS
            self._silence_ms = 0
        elif self._utterance:
            self._utterance.append(frame)
            self._silence_ms += FRAME_MS
        heard_ms = len(self._utterance) * FRAME_MS
        if self._utterance and (
            self._silence_ms >= UTTERANCE_END_MS or heard_ms >= UTTERANCE_MAX_MS
        ):
            if self._speech_ms >= SPEECH_MIN_MS:
                pcm = b"".join(self._utterance)
                self._tasks.spawn(self._read(pcm, self._now_ms))
            self._utterance, self._speech_ms, self._silence_ms = [], 0, 0
        if self._now_ms >= self._wait_ms and not self._reading.locked():
            self._decide(TIMEOUT, self._now_ms)

    async def _read(self, pcm: bytes, at_ms: int) -> None:
        async with self._reading:
            if self.outcome is not None:
                return
            try:
                text = await self._stt.transcribe(pcm, self._rate)
            except ProviderError as exc:  # unheard: a person is greeted rather than lost
                log.warning("call screening: reply not transcribed (%s)", type(exc).__name__)
                self._decide(ANSWERED, at_ms)
                return
            if not text.strip():
                return  # no words: noise on the line
            reply = screener_reply(text)
            if reply == DECLINED:
                self._decide("declined", at_ms)
            elif reply == PERSON:
                self._decide(ANSWERED, at_ms)

    def _decide(self, outcome: Outcome, at_ms: int) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self._tasks.spawn(self._on_outcome(outcome, at_ms))
