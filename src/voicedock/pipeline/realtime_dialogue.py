"""``RealtimeDialogue``: a call's dialogue over a speech-to-speech provider (``xai_realtime``).

The provider listens (server VAD), thinks and speaks itself; this class is the same surface as
``Conversation`` so the live call does not care which one runs: caller audio in
(``feed_audio``), the model's audio out through the ``OutputSink`` (cut on barge-in, stored
cut to what was heard), the transcript as it happens.

What must be reliable is spoken by voicedock's own TTS, never asked of the model: the
``first_message``, ``say``, the final message of ``end-call``, the silence prompt, the
dead-air cover and the fallback when the provider fails. The model is told what was said (a
system item), and a ``say`` (the silence prompt too) cancels the model's reply in flight first;
the dead-air cover plays while the model's late reply is still awaited. The call's limits and
the silence prompt follow the pipeline's rule (``silence_decision``) on the clock, the
provider's server VAD saying when the caller holds the floor. Provider failures end the call
with the spoken fallback and reason ``provider-error``: never open and silent.

Per-turn latency (``latencies``, the same ``TurnLatency`` as a pipeline call): a turn starts
when the server VAD decides the caller is done (``speech_stopped``). ``endpointing_ms`` is
the time from the caller's last voiced frame (our own VAD on the caller audio) to that
decision, ``tts_first_audio_ms`` the model's first audio delta and ``first_frame_sent_ms``
its first frame sent to the caller, both from the decision. ``stt_final_ms`` and
``llm_first_token_ms`` stay None: the provider has no separate STT or LLM step to time.

It is built from the same parts as the turn engine (``pipeline/dialogue/``): the speaker
(voicedock's own voice, and what the caller heard of each message), the transcript keeper,
the first message (a refused call's message ends it), the tool calls with their filler, the
keypad input and the end (grace, final message, fallback).

The caller's keypad follows the assistant's plan as on a pipeline call (``pipeline/keypad.py``):
each key barges in, the entry is ONE user item, ``"Keypad: 1234#"``, the model answers; an
entry still open when the server VAD ends a spoken turn ends with it, and the model answers
the two at once (its reply in flight is replaced). What was pressed when the call ends is
recorded. A plan turned off (``enabled`` False) ignores every key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Self

import numpy as np

from voicedock.aio import Supervisor
from voicedock.media.codecs import Resampler
from voicedock.pipeline.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.base import DialogueBase
from voicedock.pipeline.dialogue.ending import (
    ASSISTANT_ENDED_CALL,
    CLOSED,
    END_CALL_COMMAND,
    SPEECH_FAILURES,
    CallEnd,
    failure_reason,
)
from voicedock.pipeline.dialogue.first_message import opening
from voicedock.pipeline.dialogue.keypad_input import KeypadInput
from voicedock.pipeline.dialogue.speaker import Speaker
from voicedock.pipeline.dialogue.speech_tasks import SpeechTasks
from voicedock.pipeline.dialogue.tool_calls import ToolCalls
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.endpointing import silence_decision
from voicedock.pipeline.filler import dead_air
from voicedock.pipeline.frames import (
    SUPERVISOR,
    ChatMessage,
    ContextSource,
    EndCall,
    Say,
    SilencePrompt,
    ToolCall,
    TranscriptEntry,
    TurnLatency,
    supervisor_note,
)
from voicedock.pipeline.keypad import KeypadEntry
from voicedock.pipeline.output import OutputSink, PlaybackHandle, Speech, SpokenSentence
from voicedock.pipeline.providers.base import ProviderError, Tts
from voicedock.pipeline.providers.realtime import (
    RealtimeAudio,
    RealtimeConversation,
    RealtimeError,
    RealtimeFunctionCall,
    RealtimeResponseDone,
    RealtimeSpeech,
    RealtimeSpeechStarted,
    RealtimeSpeechStopped,
    RealtimeTranscript,
)
from voicedock.pipeline.tools import END_CALL, ToolExecutor, calls_entry, result_entry
from voicedock.pipeline.vad import SUPPORTED_RATES, VadConfig, VoiceActivityDetector

log = logging.getLogger("voicedock.pipeline")

_INBOUND_FRAMES = 250  # caller audio waiting for the provider (5 s of 20 ms frames)
_WATCH_INTERVAL_S = 0.1


class PcmStream:
    """16-bit PCM chunks of any byte length at one rate → whole samples at another.

    Provider audio deltas are cut anywhere (base64 pieces, odd byte counts); the odd byte and
    the resampler's filter history carry over, so the chunks join without clicks.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self._resampler = Resampler(from_rate, to_rate) if from_rate != to_rate else None
        self._odd = b""

    def convert(self, chunk: bytes) -> bytes:
        data = self._odd + chunk
        whole = len(data) - len(data) % 2
        self._odd = data[whole:]
        samples = np.frombuffer(data[:whole], dtype="<i2")
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        return samples.astype("<i2").tobytes()


class RealtimeDialogue(DialogueBase):
    def __init__(
        self,
        *,
        speech: RealtimeSpeech,
        tts: Tts,
        sink: OutputSink,
        config: ConversationConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_transcript: Callable[[TranscriptEntry], None] | None = None,
        tools: ToolExecutor | None = None,
    ) -> None:
        """``tools`` carries out the model's calls of ``config.tools`` (``end_call`` is the
        dialogue's own)."""
        self.config = cfg = config or ConversationConfig()
        self._speech, self._sink = speech, sink
        self._wall = wall_clock
        self._transcript = TranscriptKeeper(on_transcript)  # final as the provider says
        self.transcript: list[TranscriptEntry] = self._transcript.entries
        self.latencies: list[TurnLatency] = []  # one per caller turn the model answered
        self._clock = clock  # latency times (monotonic seconds)
        self._vad = _caller_vad(self.config)
        self._voiced_at: float | None = None  # the caller's last voiced frame (clock)
        self._turn: tuple[float, TurnLatency] | None = None  # decided at, breakdown so far
        self._conv: RealtimeConversation | None = None
        # A failing task ends the call with the fallback message.
        self._tasks = Supervisor(
            "speech-to-speech dialogue", log, expected=SPEECH_FAILURES, on_error=self._task_failed
        )
        self._end = CallEnd(cfg)
        # Audible now: the model's replies (played here) and voicedock's own speech.
        self._speaker = Speaker(tts, sink, cfg, wall_clock)
        self._tool_calls = ToolCalls(tools, self._tasks, cfg)
        self._speech_tasks = SpeechTasks(self._tasks)  # saying or finishing a reply
        self._audio_in: asyncio.Queue[bytes] = asyncio.Queue(_INBOUND_FRAMES)
        self._reply: Speech | None = None  # the model's reply being received
        self._reply_audio = PcmStream(speech.sample_rate, self.config.sample_rate)
        self._last_activity = 0.0  # loop time of the caller's or the assistant's last speech
        self._caller_speaking = False  # the server VAD holds a turn of the caller open
        self._prompted = False  # asked whether the caller is still there, in this silence
        self._awaiting_reply = False  # the caller's turn ended; no reply from the model yet
        self._tools_running = 0  # the model's function calls being carried out
        self._covering: asyncio.Task[None] | None = None  # waiting to cover dead air
        self._keypad = KeypadInput(cfg.keypad, wall_clock, self._keypad_due)

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        """Connect to the provider (raises ``ProviderError``) and start the call."""
        conv = self._speech.connect(self.config.instructions, self.config.tools)
        try:
            await conv.connect()
        except BaseException:
            await conv.aclose()  # the socket may be open when the session update failed
            raise
        self._conv = conv
        await self._tasks.start()
        self._spawn(self._read(conv))
        self._spawn(self._push_audio(conv))
        self._spawn(self._watch_time())
        first = opening(self.config)
        if isinstance(first, Say):
            self._spawn(self._say(first.text), speech=True)
        elif isinstance(first, EndCall):  # a refused call: its message, then the end
            self._spawn(self._finish(first.reason, first.final_message))
        return self

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop now (no final speech); what was being said is kept as heard. Idempotent.
        ``on_quiet``: see ``Dialogue``."""
        if not self._end.close():
            return
        for task in self._tasks.children:
            task.cancel()  # waited for last: our speech is cut first
        if (keys := self._keypad.flush()) is not None:
            # Pressed before the call ended: recorded, not answered.
            self._transcript.add(self._keypad.entry(keys))
        await self._interrupt()
        if on_quiet is not None:
            await on_quiet()
        if self._conv is not None:
            await self._conv.aclose()
        self._end.end(CLOSED)
        await self._tasks.aclose()

    # ── inputs (the Conversation surface) ────────────────────────────────────────────────
    def feed_audio(self, pcm: bytes) -> None:
        if self._end.over:
            return
        if self._audio_in.full():  # the provider is behind: old audio is worth least
            self._audio_in.get_nowait()
        self._audio_in.put_nowait(pcm)
        if self._vad is not None and any(self._vad.process(pcm)):
            self._voiced_at = self._clock()

    def feed_dtmf(self, digit: str) -> None:
        if self._end.over or self._conv is None or not self._keypad.enabled:
            return  # the keypad off: no barge-in, no entry, nothing for the model
        # The caller is not silent.
        self._last_activity, self._prompted = asyncio.get_running_loop().time(), False
        keys = self._keypad.press(digit)
        self._spawn(self._key_pressed(self._conv, keys))

    async def say(self, text: str) -> None:
        if not self._end.over:
            self._spawn(self._say(text), speech=True)

    async def inject_context(
        self, text: str, trigger_response: bool = False, source: ContextSource = "api"
    ) -> None:
        if self._conv is not None and not self._end.over:
            if source == SUPERVISOR:
                now = self._wall()
                self._transcript.add(TranscriptEntry(SUPERVISOR, text, now, now))
                text = supervisor_note(text)
            self._spawn(self._conv.inject_context(text, respond=trigger_response))

    async def end_call(self, final_message: str | None = None) -> None:
        if not self._end.over:
            self._spawn(self._finish(END_CALL_COMMAND, final_message))

    @property
    def history(self) -> list[ChatMessage]:
        return [
            ChatMessage(e.role, e.content)
            for e in self.transcript
            if e.role in ("system", "user", "assistant")
        ]

    # ── the provider's side ──────────────────────────────────────────────────────────────
    async def _push_audio(self, conv: RealtimeConversation) -> None:
        caller = PcmStream(self.config.sample_rate, self._speech.sample_rate)
        while True:
            await conv.push_audio(caller.convert(await self._audio_in.get()))

    async def _read(self, conv: RealtimeConversation) -> None:
        async for event in conv:
            if self._end.ending:
                continue
            match event:
                case RealtimeAudio(pcm=pcm):
                    self._awaiting_reply = False
                    await self._play_reply(pcm)
                case RealtimeTranscript(role="assistant", text=delta):
                    self._reply_speech().sentences[0].text += delta
                case RealtimeTranscript(role="user", text=text) if text.strip():
                    self._last_activity = asyncio.get_running_loop().time()
                    now = self._wall()
                    self._transcript.add(TranscriptEntry("user", text.strip(), now, now))
                case RealtimeSpeechStarted():
                    self._last_activity = asyncio.get_running_loop().time()
                    self._caller_speaking, self._prompted = True, False
                    await self._barge_in(conv)
                case RealtimeSpeechStopped():
                    self._last_activity = asyncio.get_running_loop().time()
                    self._caller_speaking, self._awaiting_reply = False, True
                    self._start_turn()
                    if (keys := self._keypad.flush()) is not None:
                        self._spawn(self._answer_keys(conv, keys))  # one reply for both
                    if self.config.dead_air_s is not None:
                        cover = self._cover_dead_air(self.config.dead_air_s)
                        self._covering = self._spawn(cover, speech=True)
                case RealtimeResponseDone():
                    self._awaiting_reply = False
                    if (reply := self._reply) is not None:
                        self._reply = None
                        self._spawn(self._settle_when_played(reply), speech=True)
                case RealtimeFunctionCall() as call:
                    self._spawn(self._call_tool(conv, call))
                case RealtimeError(code=code):
                    log.info("realtime provider error event: %s", code)
        raise ProviderError("the speech-to-speech session ended")

    async def _call_tool(self, conv: RealtimeConversation, event: RealtimeFunctionCall) -> None:
        """One function call of the model: carried out (the caller hears the filler, in
        voicedock's voice, while a slow one runs), recorded, its result sent back; the model
        answers from it unless the call is ending or leaving."""
        self._tools_running += 1
        try:
            await self._carry_out(conv, ToolCall(event.call_id, event.name, event.arguments))
        finally:
            self._tools_running -= 1

    async def _carry_out(self, conv: RealtimeConversation, call: ToolCall) -> None:
        self._transcript.add(calls_entry([call], self._wall()))
        outcome = self._tool_calls.start(call)
        if outcome is None:  # closing
            return
        if (filler := await self._tool_calls.filler_due(outcome)) is not None:
            self._spawn(self._speak(filler), speech=True)  # in voicedock's voice
        result = await outcome
        self._transcript.add(result_entry(call, result, self._wall()))
        self._awaiting_reply = not result.end_turn  # the model answers from the result
        await conv.function_result(call.id, result.content, respond=not result.end_turn)
        if call.name == END_CALL:
            self._spawn(self._finish(ASSISTANT_ENDED_CALL, None))

    def _reply_speech(self) -> Speech:
        if self._reply is None:
            self._reply = Speech(sentences=[SpokenSentence("")])
            self._reply_audio = PcmStream(self._speech.sample_rate, self.config.sample_rate)
            self._speaker.speeches.append(self._reply)
        return self._reply

    async def _play_reply(self, pcm: bytes) -> None:
        reply = self._reply_speech()
        turn = self._turn
        if turn is not None and turn[1].tts_first_audio_ms is None:
            # The model's first audio answering the caller's turn.
            turn[1].tts_first_audio_ms = self._ms_since(turn[0])
            self.latencies.append(turn[1])
        audio = self._reply_audio.convert(pcm)
        if not audio:
            return
        handle = await self._sink.play(audio, self.config.sample_rate)
        reply.sentences[0].handles.append(handle)
        if reply.started_at is None:
            reply.started_at = self._wall()
        if turn is not None:
            self._turn = None
            self._spawn(self._time_first_frame(handle, *turn))

    # ── per-turn latency ─────────────────────────────────────────────────────────────────
    def _start_turn(self) -> None:
        """The server VAD ended the caller's turn: the model's answer is timed from now."""
        now = self._clock()
        voiced_at, self._voiced_at = self._voiced_at, None
        endpointing = 0.0 if voiced_at is None else max(0.0, (now - voiced_at) * 1000)
        self._turn = (now, TurnLatency(endpointing_ms=round(endpointing, 1)))

    async def _time_first_frame(
        self, handle: PlaybackHandle, decided_at: float, latency: TurnLatency
    ) -> None:
        await handle.started()  # never, if cut before it was sent: stays None
        latency.first_frame_sent_ms = self._ms_since(decided_at)

    def _ms_since(self, then: float) -> float:
        return round((self._clock() - then) * 1000, 1)

    async def _barge_in(self, conv: RealtimeConversation) -> None:
        """The caller took the floor: the model's reply and our own speech stop."""
        await conv.cancel_response()
        await self._speech_tasks.stop()
        await self._interrupt()

    async def _watch_time(self) -> None:
        """Maximum duration, silence timeout and silence prompt by the pipeline's rule
        (``silence_decision``), here on the clock: the provider decides what is speech."""
        loop = asyncio.get_running_loop()
        started = self._last_activity = loop.time()

        def ms(at: float) -> int:
            return round((at - started) * 1000)

        while not self._end.ending:
            await asyncio.sleep(_WATCH_INTERVAL_S)
            now = loop.time()
            if self.assistant_audible or self._caller_speaking:
                self._last_activity = now
            decided = silence_decision(
                self.config.endpointing,
                ms(now),
                ms(self._last_activity),
                quiet=not self._caller_speaking,
                prompted=self._prompted,
            )
            if isinstance(decided, EndCall):
                self._spawn(self._finish(decided.reason, decided.final_message))
                return
            if isinstance(decided, SilencePrompt):
                self._prompted = True
                busy = self._speaker.speeches or self._awaiting_reply or self._tools_running
                if not busy:  # as the pipeline asks: nothing said, thought or carried out
                    self._spawn(self._say(self.config.silence_prompt_message), speech=True)

    async def _cover_dead_air(self, after_s: float) -> None:
        """The caller's turn ended and the model has not answered within ``after_s`` (a
        stalled provider): the caller hears ``dead_air_message`` in voicedock's voice while
        the model's reply is still awaited (it plays after it)."""

        def answered() -> bool:
            return not self._awaiting_reply or self._caller_speaking or self._end.ending

        covered = await dead_air(after_s, answered)
        if self._covering is asyncio.current_task():
            self._covering = None  # speaking now: the end lets it finish
        if covered:
            await self._speak(self.config.dead_air_message)

    # ── voicedock's own speech ───────────────────────────────────────────────────────────
    async def _say(self, text: str) -> None:
        """Speak ``text`` through our TTS, after cutting the model's reply in flight."""
        if self._conv is not None:
            await self._conv.cancel_response()
            await self._conv.inject_context(f"The assistant says to the caller: {text}")
        if self._reply is not None:
            reply, self._reply = self._reply, None
            self._settle(reply, await self._speaker.cut(reply), interrupted=True)
        await self._speak(text)

    async def _speak(self, text: str) -> None:
        async with self._speaker.lock:
            speech = Speech()
            await self._speaker.speak(speech, text)
            # Cut short (barge-in, a failing TTS, the end), ``_interrupt`` settles it as heard.
            await self._speaker.played(speech)
            self._settle(speech, speech.text, interrupted=False)

    # ── the caller's keypad ──────────────────────────────────────────────────────────────
    async def _key_pressed(self, conv: RealtimeConversation, keys: KeypadEntry | None) -> None:
        await self._barge_in(conv)  # a key barges in like speech
        if keys is not None:
            await self._answer_keys(conv, keys)

    def _keypad_due(self, deadline: float) -> None:
        keys = self._keypad.expire(deadline)
        if keys is not None and self._conv is not None and not self._end.ending:
            self._spawn(self._answer_keys(self._conv, keys))

    async def _answer_keys(self, conv: RealtimeConversation, keys: KeypadEntry) -> None:
        self._transcript.add(self._keypad.entry(keys))
        self._awaiting_reply = True
        await conv.user_text(keys.text)

    # ── the end ──────────────────────────────────────────────────────────────────────────
    async def _finish(self, reason: str, final: str | None) -> None:
        if self._end.ending:
            return
        self._end.ending = True
        if self._covering is not None:  # nothing to cover any more, nothing to wait for
            self._covering.cancel()
        await self._end.finish(
            reason,
            final,
            pending=self._speech_tasks.running(),
            stop=self._stop_reply,
            quiet=self._interrupt,
            say=self._speak,
        )

    async def _stop_reply(self) -> None:
        if self._conv is not None:
            with contextlib.suppress(ProviderError):
                await self._conv.cancel_response()

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    def _spawn(
        self, coro: Coroutine[object, object, None], *, speech: bool = False
    ) -> asyncio.Task[None] | None:
        """A task of the call; a ``speech`` one (saying or finishing a reply) a barge-in cuts."""
        if self._end.closed:
            coro.close()
            return None
        return self._speech_tasks.spawn(coro) if speech else self._tasks.spawn(coro)

    def _task_failed(self, exc: Exception) -> None:
        self._spawn(self._finish(failure_reason(exc), self.config.fallback_message))

    async def _interrupt(self) -> None:
        self._reply = None
        for speech in self._speaker.take(lambda _speech: False):
            with contextlib.suppress(Exception):
                self._settle(speech, await speech.flush(), interrupted=True)

    async def _settle_when_played(self, reply: Speech) -> None:
        await self._speaker.played(reply)
        self._settle(reply, reply.text, interrupted=False)

    def _settle(self, speech: Speech, text: str, *, interrupted: bool) -> None:
        """Record what the caller heard of ``speech``, once."""
        if speech.entry is not None or speech.started_at is None or not text.strip():
            return
        speech.entry = TranscriptEntry(
            "assistant", text.strip(), speech.started_at, self._wall(), interrupted
        )
        self._transcript.add(speech.entry)


def _caller_vad(config: ConversationConfig) -> VoiceActivityDetector | None:
    """Our own VAD on the caller's audio, only to time the provider's endpointing."""
    if config.vad is not None:
        return VoiceActivityDetector(config.vad)
    if config.sample_rate not in SUPPORTED_RATES:
        return None
    return VoiceActivityDetector(VadConfig(sample_rate=config.sample_rate))
