"""The caller's words on the turn engine: each spoken turn's audio transcribed.

A turn the listener ended (``pipeline/hearing/listener.py``) is transcribed in a task of the
dialogue's, bounded by the STT timeout; with an ``IncrementalStt`` it was transcribed while
spoken (``pipeline/hearing/streaming_recognition.py``) and its final is ready about when endpointing
decides. A turn not answered yet when the caller speaks again (its reply stopped before it was
heard) is merged into the next one: the merged audio is transcribed instead. A barge-in does
not stop a transcription (the call's close waits for it); at the close, what the caller said
that no turn transcribed yet is transcribed once (``unfinished``), so nothing is lost silently.

Times of the caller's audio (milliseconds of audio fed) become wall time from when the first
frame came; a turn never starts later than now (audio fed faster than real time, as in
tests, must not reorder the transcript).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voicedock.aio import Supervisor
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.frames import HeardAudio, TranscriptEntry
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.streaming_recognition import StreamingRecognizer
from voicedock.pipeline.providers.base import IncrementalStt, ProviderError, Stt

log = logging.getLogger("voicedock.pipeline")


class Words:
    """A transcription of a caller's audio under way, in a task of the dialogue's: its words,
    or the error that stopped them.

    Whoever waits (``heard``) has them in the loop turn after the transcription ends: the
    transcription hands them over itself, where awaiting its task through ``asyncio.shield``
    took two turns (the task's completion, then the shield's own future), each waiting behind
    every call's audio frames at load. A waiter stopped meanwhile (a barge-in, the call's end)
    stops only its own wait, never the transcription."""

    __slots__ = ("_task", "_waiters")

    def __init__(self) -> None:
        self._task: asyncio.Task[str | Exception] | None = None
        self._waiters: list[asyncio.Future[str | Exception]] = []

    def start(self, task: asyncio.Task[str | Exception]) -> None:
        self._task = task
        task.add_done_callback(self._ended)

    async def heard(self) -> str | Exception:
        """The words (or the error that stopped them); ``CancelledError`` when the
        transcription was cancelled (its audio merged into a later turn)."""
        assert self._task is not None
        if self._task.done():
            return self._task.result()
        waiter: asyncio.Future[str | Exception] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    def settle(self, said: str | Exception) -> None:
        """The transcription's outcome, handed to every waiter at once (by the transcription,
        as it ends)."""
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(said)

    def cancel(self) -> None:
        assert self._task is not None
        self._task.cancel()

    @property
    def failed(self) -> bool:
        """Over with a provider's error (not a timeout)."""
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return False
        return isinstance(task.result(), ProviderError)

    def _ended(self, task: asyncio.Task[str | Exception]) -> None:
        """The task is over: waiters the transcription did not settle (it was cancelled, or
        never ran) follow it."""
        for waiter in self._waiters:
            if not waiter.done():
                if task.cancelled():
                    waiter.cancel()
                else:
                    waiter.set_result(task.result())


@dataclass(slots=True, frozen=True)
class CallerTurn:
    """A caller's spoken turn waiting for its words: their transcription, and when the
    turn's audio ended (milliseconds of audio)."""

    words: Words
    ended_at_ms: int


class Hearing:
    def __init__(
        self,
        stt: Stt,
        listener: Listener,
        tasks: Supervisor,
        config: ConversationConfig,
        wall_clock: Callable[[], float],
    ) -> None:
        self._stt, self._listener, self._tasks, self._config = stt, listener, tasks, config
        self._wall = wall_clock
        # The caller's turns transcribed while spoken, by an engine cheap enough for it.
        self._recognizer = (
            StreamingRecognizer(stt, listener, tasks, config.streaming)
            if isinstance(stt, IncrementalStt) and stt.incremental
            else None
        )
        self._audio_t0: float | None = None
        self._pending_audio = b""  # caller audio not yet transcribed (merged into next turn)
        self._pending_started_ms: int | None = None
        self._pending_ended_ms: int | None = None
        # When the pending audio's first sample came (wall time; None: merged turns, a gap in
        # it)
        self._pending_audio_at: float | None = None
        self._pending_decided = 0.0  # when the frame that ended it came (wall time)
        # The transcription of `_pending_audio` under way (or done and not yet used): a
        # barge-in does not stop it, the call's close waits for it, a longer turn supersedes it.
        self._words: Words | None = None

    def listen(self) -> None:
        """Caller audio was fed to the listener (its first frame starts the audio clock)."""
        if self._audio_t0 is None:
            self._audio_t0 = self._wall()
        if self._recognizer is not None:
            self._recognizer.listen()

    def turn(self, utterance: UserUtterance, decided_at: float | None = None) -> CallerTurn:
        """The listener ended a turn: transcribe it (with any earlier turn not answered).
        ``decided_at``: the wall time the frame that ended it came (None: now)."""
        stopped = utterance.stopped
        alone = not self._pending_audio  # not merged with an earlier turn's audio
        if alone:
            self._pending_started_ms = stopped.started_at_ms
        decided = self._wall() if decided_at is None else decided_at
        heard_at = decided - utterance.started_before_ms / 1000
        self._pending_audio_at = heard_at if alone else None
        self._pending_decided = decided
        self._pending_audio += utterance.pcm
        self._pending_ended_ms = stopped.ended_at_ms
        if self._words is not None:
            self._words.cancel()  # the merged audio is transcribed instead
        if self._recognizer is not None and alone:
            words = self._recognizer.final(utterance)
        else:
            words = self._stt.transcribe(self._pending_audio, self._config.sample_rate)
        self._words = self._transcribe(words)
        return CallerTurn(self._words, stopped.ended_at_ms)

    def pending(self) -> CallerTurn | None:
        """The turn not answered yet (its reply stopped before it was heard), if any."""
        if self._words is None or self._pending_ended_ms is None:
            return None
        return CallerTurn(self._words, self._pending_ended_ms)

    def started(self) -> float:
        """When the pending turn started (wall time)."""
        return self._turn_start(self._pending_started_ms or 0)

    def heard(self) -> HeardAudio | None:
        """The pending turn's audio and when it was heard (None: merged turns)."""
        if not self._pending_audio or self._pending_audio_at is None:
            return None
        return HeardAudio(
            self._pending_audio,
            self._config.sample_rate,
            self._pending_audio_at,
            self._pending_decided,
        )

    def used(self) -> float:
        """The pending turn's words were taken for a reply: returns when it started."""
        started = self.started()
        self._pending_audio, self._pending_started_ms = b"", None
        self._pending_audio_at = None
        self._pending_ended_ms = None
        self._words = None
        return started

    def at(self, audio_ms: int) -> float:
        """Wall time of a moment of the caller's audio."""
        base = self._audio_t0 if self._audio_t0 is not None else self._wall()
        return base + audio_ms / 1000

    def open_since(self) -> float | None:
        """When the caller's earliest turn still open started (wall time): one still being
        spoken or transcribed."""
        starts = []
        if self._pending_started_ms is not None:
            starts.append(self.at(self._pending_started_ms))
        if (speaking_since := self._listener.endpointer.speech_started_ms) is not None:
            starts.append(self.at(speaking_since))
        return min(starts) if starts else None

    async def unfinished(self) -> TranscriptEntry | None:
        """At close: what the caller said that no turn transcribed yet (a turn cut by the
        call's end, a transfer). A transcription already under way is waited for (within
        its own STT timeout), never started again beside itself (only one that already
        failed with a provider's error is tried again); what the caller said after it is
        transcribed once it is over, bounded by the STT timeout."""
        started_ms = self._pending_started_ms
        if started_ms is None:
            started_ms = self._listener.endpointer.speech_started_ms
        words, pending = self._words, self._pending_audio
        rest = self._listener.take_unfinished()
        self._words, self._pending_audio, self._pending_started_ms = None, b"", None
        self._pending_ended_ms, self._pending_audio_at = None, None
        if words is not None and words.failed:
            words = None  # over, and not for lack of time: its audio is tried once more
        if words is None:  # nothing under way for the pending audio: heard with the rest
            rest, pending = pending + rest, b""
        if started_ms is None or (words is None and not rest):
            return None
        said = [await _last_words(words)] if words is not None else []
        if rest:
            rate = self._config.sample_rate
            said.append(await _last_words(self._transcribe(self._stt.transcribe(rest, rate))))
        if not (text := " ".join(w for w in said if w)):
            return None
        started = self._turn_start(started_ms)
        ended = started + (len(pending) + len(rest)) / (2 * self._config.sample_rate)
        return TranscriptEntry("user", text, started, ended)

    def _transcribe(self, words: Awaitable[str]) -> Words:
        """Start a transcription, bounded by the STT timeout from now; the task belongs to
        the dialogue, not to the turn waiting for it, and never fails."""
        deadline = asyncio.get_running_loop().time() + self._config.stt_timeout_s
        transcription = Words()

        async def transcribe() -> str | Exception:
            said: str | Exception
            try:
                async with asyncio.timeout_at(deadline):
                    said = (await words).strip()
            except Exception as exc:  # noqa: BLE001 - handed to whoever waits for the words
                said = exc
            transcription.settle(said)
            return said

        task = self._tasks.spawn_value(transcribe(), "")
        assert task is not None  # never called once the dialogue closed
        transcription.start(task)
        return transcription

    def _turn_start(self, audio_ms: int) -> float:
        return min(self.at(audio_ms), self._wall())


async def _last_words(words: Words) -> str:
    heard = await words.heard()
    if isinstance(heard, Exception):  # closing: the call's record still follows
        log.warning("last caller words not transcribed: %s", type(heard).__name__)
        return ""
    return heard
