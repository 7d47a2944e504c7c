"""The assistant's messages on a speech-to-speech call, and what the caller heard of each.

Two kinds share the line: the model's reply, played as its audio deltas arrive (re-cut and
converted to the call's rate, ``pipeline/audio.py`` ``PcmStream``) and written as the provider
transcribes it; and voicedock's own words (``speak``: the first message, a say, the silence
prompt, the dead-air cover, a tool filler, the final message, the fallback), through its TTS,
one at a time. Each is recorded once in the transcript, cut to what the caller heard: played
to its end (``settle_played``), cut by a say (``cut_reply``), or cut by the caller or the end
of the call (``cut_all``).

``awaiting_reply``: the caller's turn ended (or a keypad entry, a tool's result asks for an
answer) and the model has not answered yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine

from voicedock.pipeline.audio import PcmStream
from voicedock.pipeline.dialogue.assistant_audio import AssistantAudio
from voicedock.pipeline.dialogue.realtime.turn_latency import TurnTimer
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.frames import TranscriptEntry
from voicedock.pipeline.speaking.output import OutputSink, Speech, SpokenSentence


class AssistantMessages:
    def __init__(
        self,
        audio: AssistantAudio,
        sink: OutputSink,
        transcript: TranscriptKeeper,
        timer: TurnTimer,
        *,
        provider_rate: int,
        call_rate: int,
        wall_clock: Callable[[], float],
        spawn: Callable[[Coroutine[object, object, None]], object],
    ) -> None:
        """``spawn`` runs a task of the dialogue (the first frame of a reply, timed)."""
        self._audio, self._sink, self._transcript, self._timer = audio, sink, transcript, timer
        self._provider_rate, self._call_rate = provider_rate, call_rate
        self._wall = wall_clock
        self._spawn = spawn
        self._reply: Speech | None = None  # the model's reply being received
        self._reply_audio = PcmStream(provider_rate, call_rate)
        self.awaiting_reply = False

    # ── the model's reply ────────────────────────────────────────────────────────────────
    @property
    def reply(self) -> Speech | None:
        """The model's reply being received (its audio so far queued), if one is."""
        return self._reply

    async def reply_audio(self, pcm: bytes) -> None:
        """An audio delta of the model's reply (the provider's rate): played now."""
        self.awaiting_reply = False
        reply = self._reply_speech()
        turn = self._timer.answering()
        audio = self._reply_audio.convert(pcm)
        if not audio:
            return
        handle = await self._sink.play(audio, self._call_rate)
        reply.sentences[0].handles.append(handle)
        self._audio.started(reply)
        if turn is not None:
            self._timer.answered()
            self._spawn(self._timer.first_frame_sent(turn, handle))

    def reply_text(self, delta: str) -> None:
        """The provider's transcript of the model's reply, as it comes."""
        self._reply_speech().sentences[0].text += delta

    def reply_done(self) -> Speech | None:
        """The model's reply is complete: to settle once played (None: it said nothing)."""
        self.awaiting_reply = False
        reply, self._reply = self._reply, None
        return reply

    async def cut_reply(self) -> None:
        """Stop the model's reply in flight (a say comes first), recorded as heard."""
        if self._reply is not None:
            reply, self._reply = self._reply, None
            self._settle(reply, await self._audio.cut(reply), interrupted=True)

    def _reply_speech(self) -> Speech:
        if self._reply is None:
            self._reply = Speech(sentences=[SpokenSentence("")])
            self._reply_audio = PcmStream(self._provider_rate, self._call_rate)
            self._audio.speeches.append(self._reply)
        return self._reply

    # ── voicedock's own words ────────────────────────────────────────────────────────────
    async def speak(self, text: str) -> None:
        """Say ``text`` in voicedock's voice, after what it is saying now, to its end."""
        async with self._audio.lock:
            speech = Speech()
            await self._audio.speak(speech, text)
            # Cut short (barge-in, a failing TTS, the end), ``cut_all`` settles it as heard.
            await self._audio.played(speech)
            self._settle(speech, speech.text, interrupted=False)

    # ── what the caller heard ────────────────────────────────────────────────────────────
    async def settle_played(self, reply: Speech) -> None:
        """Record ``reply`` once it was played to its end."""
        await self._audio.played(reply)
        self._settle(reply, reply.text, interrupted=False)

    async def cut_all(self) -> int:
        """The caller took the floor, or the call ends: everything said now stops, each
        message recorded cut to what the caller heard. Returns how many had started."""
        self._reply = None
        cut = self._audio.take(lambda _speech: False)
        for speech in cut:
            with contextlib.suppress(Exception):
                self._settle(speech, await speech.flush(), interrupted=True)
        return sum(1 for speech in cut if speech.started_at is not None)

    def _settle(self, speech: Speech, text: str, *, interrupted: bool) -> None:
        """Record what the caller heard of ``speech``, once."""
        if speech.entry is not None or speech.started_at is None or not text.strip():
            return
        speech.entry = TranscriptEntry(
            "assistant", text.strip(), speech.started_at, self._wall(), interrupted
        )
        self._transcript.add(speech.entry)
