"""The assistant's audio on a call: what is being said, and what the caller heard of it.

It synthesizes each sentence in voicedock's own voice (the dialogue's TTS), queues its audio
in the output sink (``pipeline/speaking/output.py``) and keeps the handles, so that a barge-in can
flush what is queued and tell how much of each message was heard (``Speech.flush``). ``speeches``
are the messages being spoken (oldest first; a speech-to-speech model's reply among them):
the dialogue is audible while one of them has started; each message's start is told on the
call's events (``ReplyStarted``).
A message that waits while the caller holds the floor (a ``say``, the greeting: ``floor``)
waits before its first audio; audio the caller took the floor from while it was being queued
is flushed at once and queued again once their turn is over.
One message is spoken at a time (``lock``). What a message becomes once played or cut (the
transcript, the model's context) is the dialogue's to decide.

A hold (``hold``, barge-in on words: ``barge_in.py``) stops what the caller hears while the
caller's words are judged: the audio queued meanwhile is withheld, in order, and a message is
not played to its end while held; ``replay`` queues again what a hold stopped, ``release``
then plays what was withheld.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from voicedock.pipeline.audio import PcmStream
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents, ReplyStarted
from voicedock.pipeline.frames import TurnLatency
from voicedock.pipeline.providers.base import Tts
from voicedock.pipeline.speaking.output import (
    AlreadyHeard,
    OutputSink,
    PlaybackHandle,
    Speech,
    SpokenSentence,
)
from voicedock.pipeline.text import split_sentences

# Waits while the caller holds the floor, the given first audio taken back (``_send``).
TurnOver = Callable[[PlaybackHandle | None], Awaitable[bool]]


class AssistantAudio:
    def __init__(
        self,
        tts: Tts,
        sink: OutputSink,
        config: ConversationConfig,
        wall_clock: Callable[[], float],
        events: CallEvents,
        *,
        on_audio: Callable[[bytes], None] | None = None,
    ) -> None:
        """``on_audio`` sees each chunk queued for the caller (the echo gate's reference);
        ``events`` is told each message's start (``ReplyStarted``)."""
        self._tts, self._sink, self._config = tts, sink, config
        self._wall = wall_clock
        self._events = events
        self._on_audio = on_audio
        self.speeches: list[Speech] = []  # being spoken now, oldest first
        self.lock = asyncio.Lock()  # one message at a time
        self.held = False  # the caller's words decide: audio queued now waits (withheld)
        self._holds = 0  # holds so far
        self._released = asyncio.Event()
        self._released.set()
        self._withheld: list[tuple[Speech, SpokenSentence, bytes]] = []

    def use_voice(self, tts: Tts) -> None:
        """Speak the next sentences with ``tts`` (the caller's language's voice)."""
        self._tts = tts

    @property
    def audible(self) -> bool:
        return bool(self.speeches) and any(s.audible for s in self.speeches)  # every frame

    def drop(self, speech: Speech) -> bool:
        """``speech`` is no longer being spoken; False when it was not any more."""
        with contextlib.suppress(ValueError):
            self.speeches.remove(speech)
            return True
        return False

    def take(self, keep: Callable[[Speech], bool]) -> list[Speech]:
        """The speeches a barge-in cuts (all but those to ``keep``), no longer spoken."""
        cut = [s for s in self.speeches if not keep(s)]
        self.speeches = [s for s in self.speeches if keep(s)]
        return cut

    def started(self, speech: Speech) -> bool:
        """``speech``'s first audio was queued now (told: ``ReplyStarted``); False when it had
        started before."""
        if speech.started_at is not None:
            return False
        speech.started_at = at = self._wall()
        self._events.emit(ReplyStarted(at, filler=speech.filler))
        return True

    async def cut(self, speech: Speech) -> str:
        """Stop ``speech`` now; returns what the caller heard of it."""
        self.drop(speech)
        return await speech.flush()

    async def played(self, speech: Speech) -> bool:
        """Wait until all of ``speech`` was played; False when it was cut meanwhile. A hold
        is waited out: its audio, queued again, is waited for."""
        while True:
            holds = self._holds
            await speech.wait_played()
            if self.held:
                await self._released.wait()
            elif holds == self._holds:
                return self.drop(speech)

    def hold(self) -> None:
        """Audio queued from now on waits (``release``)."""
        self.held = True
        self._holds += 1
        self._released.clear()

    async def replay(self, sentence: SpokenSentence, heard: list[float], overlap_ms: float) -> None:
        """Queue again what a hold stopped of ``sentence``, whose handles had played ``heard``
        milliseconds each: from ``overlap_ms`` before where the caller stopped hearing it."""
        rate = self._config.sample_rate
        stopped, stopped_audio = sentence.handles, sentence.audio
        handles: list[PlaybackHandle] = []
        chunks: list[bytes] = []
        for index, (handle, pcm, ms) in enumerate(zip(stopped, stopped_audio, heard, strict=True)):
            total = handle.duration_ms
            if ms >= total - 1.0 or not pcm:
                handles.append(AlreadyHeard(total))
                chunks.append(b"")
            else:
                start = max(0.0, ms - overlap_ms)
                cut = min(len(pcm), int(start * rate / 1000) * 2)
                tail = pcm[cut:]
                queued = await self._sink.play(tail, rate)  # (a hold may stop it before)
                if cut:
                    handles.append(AlreadyHeard(start))
                    chunks.append(b"")
                handles.append(queued)
                chunks.append(tail)
                if self._on_audio is not None:
                    self._on_audio(tail)
            # As it goes: a hold stopping this finds each handle queued again, or as stopped.
            sentence.handles = handles + stopped[index + 1 :]
            sentence.audio = chunks + stopped_audio[index + 1 :]

    async def release(self) -> None:
        """The hold is over: what was withheld is played, in order (a message no longer
        spoken loses its share)."""
        while self._withheld:
            speech, spoken, audio = self._withheld[0]
            if speech in self.speeches:
                await self._send(speech, spoken, audio)
                self.started(speech)  # a message whose first audio was withheld starts now
            self._withheld.pop(0)  # (a hold stopping this finds it still waiting)
        self.held = False
        self._released.set()

    async def speak(self, speech: Speech, text: str) -> None:
        """Speak all of ``text`` as ``speech`` (queued, not yet played to its end)."""
        self.speeches.append(speech)
        for sentence in split_sentences(text):
            await self.speak_sentence(speech, sentence)

    async def speak_sentence(
        self,
        speech: Speech,
        sentence: str,
        *,
        latency: TurnLatency | None = None,
        t0: float = 0.0,
        floor: asyncio.Event | None = None,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        """Synthesize ``sentence`` and queue its audio as part of ``speech``, within the TTS
        timeout. With ``floor``, the message's first audio waits (not timed) until it is set:
        the caller holds the floor. ``latency`` notes the first audio synthesized and sent
        (milliseconds since ``t0``, a ``perf_counter``); ``on_started`` is called once the
        message's first audio is queued."""
        spoken = SpokenSentence(sentence)
        # One stream for the sentence: its pieces, cut wherever the voice's answer was, join
        # without a seam at the call's rate.
        stream = PcmStream(self._tts.sample_rate, self._config.sample_rate)
        async with asyncio.timeout(self._config.tts_timeout_s) as deadline:

            async def turn_over(queued: PlaybackHandle | None = None) -> bool:
                """Wait (not timed) while the caller holds the floor and nothing of the
                message was queued before, ``queued`` taken back first; True if it waited."""
                if floor is None or speech.started_at is not None or floor.is_set():
                    return False
                if queued is not None:
                    await queued.flush()
                deadline.reschedule(None)
                await floor.wait()
                loop = asyncio.get_running_loop()
                deadline.reschedule(loop.time() + self._config.tts_timeout_s)
                return True

            async for pcm in self._tts.synthesize(sentence):
                await turn_over(None)
                if latency is not None and latency.tts_first_audio_ms is None:
                    latency.tts_first_audio_ms = ms_since(t0)
                await self._queue(
                    speech, spoken, stream.convert(pcm), latency, t0, on_started, turn_over
                )
            await self._queue(speech, spoken, stream.end(), latency, t0, on_started, turn_over)

    async def _queue(
        self,
        speech: Speech,
        spoken: SpokenSentence,
        audio: bytes,
        latency: TurnLatency | None,
        t0: float,
        on_started: Callable[[], None] | None,
        turn_over: TurnOver | None = None,
    ) -> None:
        """A piece of ``spoken``'s audio, at the call's rate, to the sink. ``turn_over``: see
        ``_send``."""
        if not audio:
            return
        if self.held:
            self._withheld.append((speech, spoken, audio))
            return
        handle = await self._send(speech, spoken, audio, turn_over)
        if self.started(speech):
            if on_started is not None:
                on_started()
            if latency is not None:
                await handle.started()
                latency.first_frame_sent_ms = ms_since(t0)

    async def _send(
        self,
        speech: Speech,
        spoken: SpokenSentence,
        audio: bytes,
        turn_over: TurnOver | None = None,
    ) -> PlaybackHandle:
        """Queue ``audio`` in the sink. With ``turn_over`` (a message that waits while the
        caller holds the floor), a message's first audio the caller took the floor from while
        it was being queued is taken back at once and queued again once their turn is over."""
        handle = await self._sink.play(audio, self._config.sample_rate)
        while turn_over is not None and await turn_over(handle):
            handle = await self._sink.play(audio, self._config.sample_rate)
        if self._on_audio is not None:
            self._on_audio(audio)
        if not spoken.handles:
            speech.sentences.append(spoken)
        spoken.handles.append(handle)
        spoken.audio.append(audio)
        return handle


def ms_since(t0: float) -> float:
    """Milliseconds since ``t0`` (a ``time.perf_counter()``)."""
    return (time.perf_counter() - t0) * 1000
