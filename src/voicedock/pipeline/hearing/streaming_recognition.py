"""Streaming recognition over an utterance engine: the caller's turn transcribed while it is
spoken, so its final transcript is ready (nearly) when endpointing decides the turn is over.

* While the caller speaks, the turn so far is transcribed after every ``interim_every_ms`` of
  audio (an interim). Words on which two consecutive transcripts of the turn agree (local
  agreement; the earlier one's last word excepted, the window cut it) are settled and given
  to the engine as the decoder prefix of the next transcription, so it only decodes the rest.
* Once the caller has paused for ``pause_ms``, a speculative final of the turn up to the
  pause starts. Its text tells the endpointer whether the turn reads as finished
  (``turn_completion.py``), which adaptive endpointing waits on.
* When endpointing ends the turn with no speech since that pause, the speculative final is
  the final transcript. Otherwise the final transcribes the whole turn again, with the
  settled prefix, so only its tail is decoded afresh.

The CPU is bounded: one transcription per call at a time, none queued. An interim or a
speculative final starts only when nothing is under way (a stale one is never started late),
and the final waits for a transcription under way (a worker thread cannot be stopped) before
it starts. A failed interim or speculative final costs nothing but its time: the final is
transcribed as usual.

Through the node's recognition pool (a ``PooledStt``, ``recognition.py``) interims and
speculative finals wait ``AHEAD`` behind every call's finals: when the final is the speculative
one, the job is promoted (a caller waits for it now); an interim still waiting when the turn
ends is dropped, never run, and the final goes in its place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

from voicedock.aio import Supervisor
from voicedock.errors import ProviderError
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.recognition import PooledStt
from voicedock.pipeline.hearing.turn_completion import utterance_complete
from voicedock.pipeline.pools.worker_pool import Job
from voicedock.pipeline.providers.base import IncrementalStt

log = logging.getLogger("voicedock.pipeline")


@dataclass(slots=True, frozen=True)
class StreamingConfig:
    interim_every_ms: int = 1500  # speech between two interims of a turn (0: no interims)
    pause_ms: int = 100  # silence after speech that starts the speculative final

    def __post_init__(self) -> None:
        if self.interim_every_ms < 0 or self.pause_ms <= 0:
            raise ValueError("streaming: interim_every_ms >= 0 and pause_ms > 0 are required")


@dataclass(slots=True, frozen=True, eq=False)
class _Pass:
    """One transcription of a turn so far: an interim, or the speculative final of a pause."""

    turn_ms: int  # when the turn started (audio time): which turn it is about
    until_ms: int  # the audio time it covers; for a speculative final, the speech's end
    speculative: bool
    task: asyncio.Task[str | None]  # the words, or None when the engine failed
    job: Job[str] | None  # its job in the node's recognition pool (None: not pooled)


class StreamingRecognizer:
    """The streaming transcription of one call's caller turns (one per ``TurnEngine``).

    ``listen()`` after each frame the listener processed; ``final(utterance)`` once it ended
    a turn. Transcriptions run as children of ``tasks``, the conversation's supervisor."""

    def __init__(
        self,
        stt: IncrementalStt,
        listener: Listener,
        tasks: Supervisor,
        config: StreamingConfig | None = None,
    ) -> None:
        self._stt = stt
        self._listener = listener
        self._tasks = tasks
        self._cfg = config or StreamingConfig()
        self._turn_ms: int | None = None  # the turn the state below is about
        self._settled = ""  # the agreed start of the turn's transcript
        self._previous: list[str] | None = None  # the words of its latest transcript
        self._last: _Pass | None = None  # its latest transcription, under way or done
        self._last_start_ms = 0
        self._busy = 0  # transcriptions under way (passes and finals)

    @property
    def settled(self) -> str:
        """The agreed start of the current turn's transcript (empty at first)."""
        return self._settled

    def listen(self) -> None:
        """Start an interim or the speculative final when one is due and nothing runs."""
        endpointer = self._listener.endpointer
        turn = endpointer.speech_started_ms
        if not endpointer.user_speaking or turn is None or self._busy:
            return
        if turn != self._turn_ms:
            self._turn_ms, self._settled, self._previous, self._last = turn, "", None, None
            self._last_start_ms = turn
        silence, now = endpointer.silence_ms, endpointer.now_ms
        if silence >= self._cfg.pause_ms:
            until = now - silence
            last = self._last
            if last is None or not last.speculative or last.until_ms != until:
                self._start(turn, until, speculative=True)
        elif silence == 0 and 0 < self._cfg.interim_every_ms <= now - self._last_start_ms:
            self._start(turn, now, speculative=False)

    async def final(self, utterance: UserUtterance) -> str:
        """The final transcript of the turn ``utterance`` ended. Raises ProviderError."""
        stopped = utterance.stopped
        last = self._last
        if (
            last is not None
            and last.speculative
            and (last.turn_ms, last.until_ms) == (stopped.started_at_ms, stopped.ended_at_ms)
        ):
            if last.job is not None:
                last.job.promote()  # the caller waits for it now
            heard = await asyncio.shield(last.task)  # no speech since the pause
            if heard is not None:
                self._forget(stopped.started_at_ms)
                return heard
        elif last is not None and not last.task.done():
            if last.job is not None and not last.job.started:
                last.job.cancel()  # still waiting in the pool: dropped, the final goes instead
            else:
                await asyncio.wait([last.task])  # one transcription at a time
        prefix = self._settled if self._turn_ms == stopped.started_at_ms else ""
        self._forget(stopped.started_at_ms)
        self._busy += 1
        try:
            return await self._stt.transcribe_continuing(
                utterance.pcm, utterance.sample_rate, prefix
            )
        finally:
            self._busy -= 1

    def _forget(self, turn: int) -> None:
        """Drop what is known of ``turn`` (not of a turn begun since)."""
        if self._turn_ms == turn:
            self._turn_ms, self._settled, self._previous, self._last = None, "", None, None

    def _start(self, turn: int, until: int, *, speculative: bool) -> None:
        audio = self._listener.heard_so_far()
        if not audio:
            return
        self._last_start_ms = self._listener.endpointer.now_ms
        rate = self._listener.sample_rate
        job: Job[str] | None = None
        if isinstance(self._stt, PooledStt):
            job = self._stt.queue(audio, rate, self._settled)
            words: Callable[[], Awaitable[str]] = partial(_result, job)
        else:
            words = partial(self._stt.transcribe_continuing, audio, rate, self._settled)
        work = self._transcribe(turn, until, words, job, speculative=speculative)
        self._busy += 1
        task = self._tasks.spawn_value(work, None)
        if task is None:  # the call is closing
            self._busy -= 1
            if job is not None:
                job.cancel()
            return
        self._last = _Pass(turn, until, speculative, task, job)

    async def _transcribe(
        self,
        turn: int,
        until: int,
        words: Callable[[], Awaitable[str]],
        job: Job[str] | None,
        *,
        speculative: bool,
    ) -> str | None:
        try:
            text = await words()
        except ProviderError as exc:
            log.debug("caller's turn so far not transcribed: %s", type(exc).__name__)
            return None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if job is not None and job.future.cancelled() and task and not task.cancelling():
                return None  # dropped from the pool for the final
            raise
        finally:
            self._busy -= 1
        if turn == self._turn_ms:
            self._agree(text.split())
            if speculative:
                self._hint(turn, until, text)
        return text

    def _agree(self, words: list[str]) -> None:
        """Settle the words the turn's last two transcripts agree on."""
        previous, self._previous = self._previous, words
        if previous is None:
            return
        agreed = _common_start(previous[:-1], words)
        if len(agreed) > len(self._settled.split()):
            self._settled = " ".join(agreed)

    def _hint(self, turn: int, until: int, text: str) -> None:
        """Tell the endpointer how the turn reads, if the caller is still in that pause."""
        endpointer = self._listener.endpointer
        if endpointer.speech_started_ms == turn and endpointer.pause_started_ms == until:
            endpointer.hint_complete(utterance_complete(text))


async def _result(job: Job[str]) -> str:
    return await job.future


def _common_start(a: list[str], b: list[str]) -> list[str]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]
