"""A call answered by a call-screening assistant: waiting for the person behind it.

Once the screener heard the screening message, ``ScreenerWait`` is fed the callee's audio
(``hear``) and cuts it into utterances (``pipeline/hearing/line_utterances.py``: speech,
then ``UTTERANCE_END_MS`` of silence); each is transcribed with the call's STT and read
(``pipeline/hearing/call_screening.py``):
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
from voicedock.pipeline.hearing.line_utterances import LineUtterances
from voicedock.pipeline.providers.base import ProviderError, Stt

log = logging.getLogger("voicedock.calls")

Outcome = Literal["answered", "declined", "timeout"]
ANSWERED: Final = "answered"
TIMEOUT: Final = "timeout"
UTTERANCE_END_MS = 600  # silence after speech that ends an utterance


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
        self._line = LineUtterances(sample_rate, end_ms=UTTERANCE_END_MS)
        self._reading = asyncio.Lock()  # one utterance read at a time, in order
        self.outcome: Outcome | None = None

    def hear(self, pcm: bytes) -> None:
        """Callee audio (16-bit PCM at ``sample_rate``), any chunking."""
        if self.outcome is not None:
            return
        for utterance in self._line.feed(pcm):
            self._tasks.spawn(self._read(utterance.pcm, utterance.at_ms))
        if self._line.now_ms >= self._wait_ms and not self._reading.locked():
            self._decide(TIMEOUT, self._line.now_ms)

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
