"""The turn engine: caller audio in, assistant audio out, one `TurnEngine` per call.

    feed_audio → Listener (VAD + endpointing) → turn task: STT → LLM → TTS → OutputSink

The conversation routes the call's events (the listener's frames, keys, commands) to its
processors in ``pipeline/dialogue/``, one job each: ``hearing.py`` transcribes the caller's
turns (while spoken, with an `IncrementalStt`: ``streaming_recognition.py``; the turn model
asked at the caller's pauses with ``turn_detection`` "model": ``turn_detection.py``),
``answering.py`` answers a turn (its words and keys into the transcript and the model's
context, the reply said, dead air covered, its latency recorded), ``reply.py`` streams the
model's reply with its fillers and tool calls, ``barge_in.py`` says the
assistant's messages and keeps the floor (barge-in), ``history.py`` is the model's context;
``assistant_audio.py``, ``interruptible_tasks.py``, ``transcript.py``, ``keypad_input.py``,
``tool_calls.py``, ``first_message.py`` and ``ending.py`` it shares with the speech-to-speech
dialogue (``pipeline/dialogue/realtime_dialogue.py``).

`feed_audio` is synchronous and cheap (it runs per 20 ms frame); everything slow happens in
tasks owned by the conversation's supervisor. When the caller takes the floor, what is being
said or thought is cancelled, queued audio is flushed, and the assistant message is stored cut
to what was actually played (`interrupted=True`, possibly empty: a greeting cut before its
first word is still in the transcript). A `say` (and the first message) waiting behind the
interrupted speech is never dropped: it is spoken once the caller's turn is over, or, if the
call ends first, recorded as interrupted at 0 words.

`transcript` is in spoken order (by when a message *started*); each message is told on the
call's events (``MessageAdded``, ``pipeline/dialogue/events.py``) once no earlier-started
turn is still open (a caller still talking or being transcribed, an assistant message still
playing), so the messages told, too, come in spoken order. The reply is spoken sentence by
sentence as the model streams it; a reply slow to start, or a slow tool, is covered by a filler
(``pipeline/speaking/filler.py``), a message of its own that the model never sees. Provider failures
lead to a short spoken fallback within a bounded time and then the end of the call with reason
"provider-error": a call is never left open and silent. The owner hangs up when `wait_ended()`
returns.

With barge-in on words (``config.barge_in.on_words``, ``words_decide.py``) the caller's
speech over the assistant first holds its audio (stopped at once; ``Floor.hold``); once the
caller's utterance is transcribed its words decide: no words, a sound too short, or only
backchannels ("mm-hm", "yeah"): the message goes on where it stopped, and the utterance is
neither a turn for the model nor in the transcript; real words: the barge-in stands as above,
the words are the caller's turn.

The caller's keypad (``pipeline/hearing/keypad.py``): each key pressed barges in like speech, and
the digits of one entry become ONE user turn, ``"Keypad: 1234#"``, when the plan's terminator is
pressed, ``max_digits`` are collected or ``timeout_s`` passes after the last digit; the model
answers it like a spoken turn. A spoken turn that ends while an entry is open ends the entry
too: the two are one turn for the model, in the order they started (so are the transcript
and its ``MessageAdded`` events), and one reply answers both. Words whose reply a key stopped
come before the entry that key started. What was pressed when the call ends is still
recorded. A plan turned off (``enabled`` False) ignores every key: no barge-in, nothing for
the model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Self

from voicedock.aio import Supervisor
from voicedock.domain.assistant_config import TURN_MODEL
from voicedock.pipeline.dialogue.answering import Answering
from voicedock.pipeline.dialogue.assistant_audio import AssistantAudio
from voicedock.pipeline.dialogue.barge_in import Floor
from voicedock.pipeline.dialogue.base import DialogueBase
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig as ConversationConfig
from voicedock.pipeline.dialogue.ending import ASSISTANT_ENDED_CALL as ASSISTANT_ENDED_CALL
from voicedock.pipeline.dialogue.ending import CLOSED, HANDED_OVER, CallEnd, failure_reason
from voicedock.pipeline.dialogue.ending import END_CALL_COMMAND as END_CALL_COMMAND
from voicedock.pipeline.dialogue.ending import INTERNAL_ERROR as INTERNAL_ERROR
from voicedock.pipeline.dialogue.ending import PROVIDER_ERROR as PROVIDER_ERROR
from voicedock.pipeline.dialogue.ending import REFUSED as REFUSED
from voicedock.pipeline.dialogue.ending import SPEECH_FAILURES as SPEECH_FAILURES
from voicedock.pipeline.dialogue.events import CallEvents, SpeechEnded, SpeechStarted
from voicedock.pipeline.dialogue.first_message import opening
from voicedock.pipeline.dialogue.flow_run import FlowRun
from voicedock.pipeline.dialogue.following_language import FollowingLanguage, following_language
from voicedock.pipeline.dialogue.hearing import CallerTurn, Hearing
from voicedock.pipeline.dialogue.history import ModelHistory
from voicedock.pipeline.dialogue.keypad_input import KeypadInput
from voicedock.pipeline.dialogue.reply import Replies
from voicedock.pipeline.dialogue.tool_calls import ToolCalls
from voicedock.pipeline.dialogue.transcript import TranscriptKeeper
from voicedock.pipeline.dialogue.words_decide import BargeInConfig
from voicedock.pipeline.fallback_plans.llm import LlmPlan
from voicedock.pipeline.fallback_plans.serving import Endpoints, Serving
from voicedock.pipeline.frames import (
    SUPERVISOR,
    ChatMessage,
    ContextSource,
    Dtmf,
    EndCall,
    Frame,
    InjectContext,
    Say,
    SilencePrompt,
    TranscriptEntry,
    TurnLatency,
    UserSpeechStarted,
    supervisor_note,
)
from voicedock.pipeline.hearing.keypad import KeypadEntry
from voicedock.pipeline.hearing.language import CallLanguages
from voicedock.pipeline.hearing.listener import Listener, UserUtterance
from voicedock.pipeline.hearing.noise import NoiseSuppressor
from voicedock.pipeline.hearing.turn_detection import PredictTurn, TurnDetector
from voicedock.pipeline.hearing.voicing import pitched_ms
from voicedock.pipeline.providers.base import Llm, Stt, Tts
from voicedock.pipeline.speaking.output import OutputSink
from voicedock.pipeline.tools import KnowingTools, ToolExecutor
from voicedock.weak import weak_method

log = logging.getLogger("voicedock.pipeline")

__all__ = [
    "ASSISTANT_ENDED_CALL",
    "END_CALL_COMMAND",
    "INTERNAL_ERROR",
    "PROVIDER_ERROR",
    "REFUSED",
    "SPEECH_FAILURES",
    "ConversationConfig",
    "TurnEngine",
    "TurnParts",
    "failure_reason",
]


@dataclass(frozen=True, slots=True)
class TurnParts:
    """What one turn engine works with.

    ``llm`` may be a fallback plan (so may ``stt`` and ``tts``); ``tools`` carries out the
    model's calls of ``config.tools`` (``end_call`` is the engine's own); ``endpoints`` names
    the engines, for each turn's latency record and the provider of each message
    (``pipeline/fallback_plans/serving.py``); ``predict_turn`` is the turn model that
    ``endpointing.turn_detection = "model"`` asks at the caller's pauses
    (``pipeline/hearing/turn_detection.py``; without it, silence decides); ``events`` is told what
    the dialogue decides (``pipeline/dialogue/events.py``: the caller's speech and turns, the
    replies started and interrupted, the tools called, each final message as it is added to
    ``transcript``); without it the engine keeps a bus of its own."""

    stt: Stt
    llm: Llm | LlmPlan
    tts: Tts
    sink: OutputSink
    tools: ToolExecutor | None = None
    endpoints: Endpoints | None = None
    predict_turn: PredictTurn | None = None
    events: CallEvents | None = None
    languages: CallLanguages | None = None
    wall_clock: Callable[[], float] = time.time


class TurnEngine(DialogueBase):
    """One call's dialogue. Use as ``async with TurnEngine(parts, config) as conv``."""

    _judging = False  # the caller's words over the held assistant are awaited

    def __init__(self, parts: TurnParts, config: ConversationConfig | None = None) -> None:
        self.config = cfg = config or ConversationConfig()
        self._wall = parts.wall_clock
        self.events = parts.events if parts.events is not None else CallEvents("turn engine")
        named = parts.endpoints or Endpoints()
        self._serving = Serving(parts.stt, parts.llm, parts.tts, named)  # who serves each now
        self._listener = _listener(cfg)
        # The caller's audio denoised before the listener's VAD and the STT hear it.
        self._denoiser = NoiseSuppressor(cfg.sample_rate) if cfg.noise_suppression else None
        self._transcript = TranscriptKeeper(
            self.events,
            weak_method(self._open_since),
            self._serving.provider_of,
            redactor=cfg.redactor,
            member=cfg.member,
        )
        self.transcript: list[TranscriptEntry] = self._transcript.entries
        self.handed_over_to: str | None = None  # the member the model handed the call to
        self._history = ModelHistory(cfg)
        self.flow = FlowRun(cfg.flow, self.events, cfg.redact) if cfg.flow is not None else None
        self._events: asyncio.Queue[Frame] = asyncio.Queue()
        # A failing speech task ends the call with the fallback message.
        self._tasks = Supervisor(
            "conversation", log, expected=SPEECH_FAILURES, on_error=weak_method(self._task_failed)
        )
        self._run_task: asyncio.Task[None] | None = None
        self._end = CallEnd(cfg)
        self._hearing = Hearing(parts.stt, self._listener, self._tasks, cfg, self._wall)
        self._turn_detector = None
        if parts.predict_turn is not None and cfg.endpointing.turn_detection == TURN_MODEL:
            self._turn_detector = TurnDetector(parts.predict_turn, self._listener, self._tasks)
        self._assistant_audio, self._replies, self._floor = self._speaking(parts, named)
        tools = parts.tools
        self._knowledge = tools.turn_knowledge() if isinstance(tools, KnowingTools) else None
        self._keypad = KeypadInput(cfg.keypad, self._wall, weak_method(self._keypad_due))
        language = following_language(
            parts.languages, parts.tts, self._transcript, self._history, self._assistant_audio
        )
        self._answering = self._answers(language)
        self.latencies: list[TurnLatency] = self._answering.latencies

    def _speaking(
        self, parts: TurnParts, named: Endpoints
    ) -> tuple[AssistantAudio, Replies, Floor]:
        """The assistant's side: its audio, the model's replies, the floor (barge-in)."""
        cfg, wall = self.config, self._wall
        echo = self._listener.echo
        audio = AssistantAudio(parts.tts, parts.sink, cfg, wall, self.events, on_audio=echo.play)
        llm = parts.llm
        plan = llm if isinstance(llm, LlmPlan) else LlmPlan.alone(llm, named.llm)
        replies = Replies(
            plan,
            wall,
            partial(self._events.put_nowait, EndCall(ASSISTANT_ENDED_CALL, None)),
            weak_method(self.hand_over),
            cfg,
            self._history,
            self._transcript,
            ToolCalls(parts.tools, self._tasks, cfg, self.events),
            self._tasks,
            self.flow,
        )
        floor = Floor(audio, self._history, self._transcript, self._tasks, wall, echo, self.events)
        return audio, replies, floor

    def _answers(self, language: FollowingLanguage | None) -> Answering:
        """What answers the caller's turns (``answering.py``)."""
        return Answering(
            self.config,
            hearing=self._hearing,
            keypad=self._keypad,
            floor=self._floor,
            replies=self._replies,
            serving=self._serving,
            transcript=self._transcript,
            history=self._history,
            language=language,
            end=self._end,
            events=self.events,
            knowledge=self._knowledge,
        )

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        await self._tasks.start()
        self._run_task = self._tasks.spawn(self._run())
        if (first := opening(self.config)) is not None:
            self._events.put_nowait(first)
        if self.flow is not None:  # its start node: its instructions, and what it says
            self._history.step_line = self.flow.instructions()
            self._transcript.node = self.flow.node.name
            if (said := self.flow.started()) is not None:
                self._events.put_nowait(Say(said))
        return self

    async def aclose(self, on_quiet: Callable[[], Awaitable[None]] | None = None) -> None:
        """Stop everything now (no final speech); idempotent. ``on_quiet``: see ``Dialogue``."""
        if not self._end.close():
            return
        run, self._run_task = self._run_task, None  # ended, it would hold this engine's frame
        for task in [*self._floor.tasks, *([run] if run else [])]:
            task.cancel()
        if (keys := self._keypad.flush()) is not None:
            self._answering.add_keypad(keys)  # pressed before the call ended: recorded
        await self._floor.cut_all()
        if on_quiet is not None:
            await on_quiet()
        if (last := await self._hearing.unfinished()) is not None:
            self._transcript.add(last)
            self._history.add(ChatMessage("user", last.content))
        self._end.end(CLOSED)
        await self._tasks.aclose()
        self._transcript.report(everything=True)  # the call is over: no turn is open any more

    # ── inputs ───────────────────────────────────────────────────────────────────────────
    def feed_audio(self, pcm: bytes) -> None:
        """Caller audio (16-bit mono PCM at the call rate). Cheap; call once per frame."""
        if self._end.over:
            return
        if self._denoiser is not None:
            pcm = self._denoiser.process(pcm)
        for frame in self._listener.process(pcm, self.assistant_audible):
            if isinstance(frame, UserUtterance):
                turn = _Turn(frame, time.perf_counter(), self._wall())
                self.events.emit(SpeechEnded(turn.decided_wall))
                self._events.put_nowait(turn)
            else:
                if isinstance(frame, UserSpeechStarted):
                    self.events.emit(SpeechStarted(self._wall()))
                self._events.put_nowait(frame)
        self._hearing.listen()
        if self._turn_detector is not None:
            self._turn_detector.listen()
        if self._transcript.holding:  # a caller's blip that did not become a turn no longer
            self._transcript.report()  # holds them

    def feed_dtmf(self, digit: str) -> None:
        if self._keypad.enabled:  # off: no barge-in, no entry, nothing for the model
            self._events.put_nowait(Dtmf(digit))

    async def say(self, text: str) -> None:
        self._events.put_nowait(Say(text))

    async def inject_context(
        self, text: str, trigger_response: bool = False, source: ContextSource = "api"
    ) -> None:
        if source == SUPERVISOR:  # the call's from the moment it is acknowledged
            now = self._wall()
            self._transcript.add(TranscriptEntry(SUPERVISOR, text, now, now))
        self._events.put_nowait(InjectContext(text, trigger_response, source))

    async def end_call(self, final_message: str | None = None) -> None:
        """Finish what is being said, speak `final_message`, then signal hang-up."""
        self._events.put_nowait(EndCall(END_CALL_COMMAND, final_message))

    async def announce(self, text: str) -> None:
        """Speak `text` to its end (a barge-in does not cut it) and return once it was
        played: a transfer announcement. Recorded like any assistant message."""
        if not self._end.over:
            await self._floor.say_now(text, interruptible=False)

    @property
    def history(self) -> list[ChatMessage]:
        return list(self._history.messages)

    # ── the event loop of the call ───────────────────────────────────────────────────────
    async def _run(self) -> None:
        try:
            await self._dispatch_events()
        except Exception:
            # A bug or a broken sink must not leave the call open and silent.
            log.exception("conversation failed; ending the call")
            self._end.ending = True
            self._end.end(INTERNAL_ERROR)

    async def _dispatch_events(self) -> None:
        while True:
            event = await self._events.get()
            if self._end.ending:
                continue
            if isinstance(event, UserSpeechStarted):
                self._floor.floor_free.clear()
                if self._judging:
                    pass  # still held: the words decide
                elif (
                    self.config.barge_in.on_words
                    and self._hearing.pending() is None  # a turn not yet answered: words
                    and await self._floor.hold()
                ):
                    self._judging = True
                else:
                    await self._floor.interrupt()
            elif isinstance(event, _Turn) and self._judging:
                user = self._hearing.turn(event.utterance, event.decided_wall)
                enough = self.config.barge_in.min_voiced_ms
                self._tasks.spawn(_judged(event, user, enough, self._events.put_nowait))
            elif isinstance(event, _Verdict):
                # The caller's words over the held assistant decide: a backchannel or a noise
                # lets it go on; words interrupt it and are the caller's turn.
                if (stands := _stands(event, self._hearing, self.config.barge_in)) is None:
                    continue  # merged into a later utterance, judged in its turn
                self._judging = False
                if self._floor.held and not stands:
                    self._hearing.used()  # not a turn: nothing for the model or the transcript
                    self._floor.resume()
                    self._floor.floor_free.set()
                    self._transcript.report()
                    continue
                if self._floor.held:
                    await self._floor.interrupt()
                self._floor.floor_free.set()
                self._spoken_turn(event.turn, self._keypad.flush(), event.user)
            elif isinstance(event, _Turn):
                self._floor.floor_free.set()
                # An entry still open ends with the caller's spoken turn: one turn for both.
                self._spoken_turn(event, self._keypad.flush())
            elif isinstance(event, SilencePrompt):
                if not self._assistant_audio.speeches and self._floor.floor_free.is_set():
                    self._events.put_nowait(Say(self.config.silence_prompt_message))
            elif isinstance(event, Say):
                self._floor.say(event.text)
            elif isinstance(event, InjectContext):
                if event.source == SUPERVISOR:
                    self._history.add(ChatMessage("system", supervisor_note(event.content)))
                else:
                    self._history.add(ChatMessage("system", event.content))
                if event.trigger_response:
                    self._answering.context_turn()
            elif isinstance(event, Dtmf):
                await self._floor.interrupt()  # a key pressed barges in like speech
                self._press(event.digit)
            elif isinstance(event, _KeypadDue):
                if (keys := self._keypad.expire(event.deadline)) is not None:
                    self._answering.keypad_turn(keys)
            elif isinstance(event, EndCall):
                await self._finish(event)

    def _task_failed(self, exc: Exception) -> None:
        self._events.put_nowait(EndCall(failure_reason(exc), self.config.fallback_message))

    def hand_over(self, member: str) -> None:
        """The call goes on with its squad's ``member`` (the model's ``handoff``, an
        operator's): this dialogue ends (``HANDED_OVER``) once what is being said was said;
        the first handoff stands."""
        if self.handed_over_to is None:
            self.handed_over_to = member
            self._events.put_nowait(EndCall(HANDED_OVER, None))

    def _spoken_turn(
        self, turn: _Turn, keys: KeypadEntry | None = None, user: CallerTurn | None = None
    ) -> None:
        """The caller's spoken turn ended (with ``keys``: the keypad entry it ended; ``user``:
        its transcription, when it was started already): answered."""
        self._answering.spoken_turn(turn.utterance, turn.decided, turn.decided_wall, keys, user)

    # ── the keypad ───────────────────────────────────────────────────────────────────────
    def _press(self, digit: str) -> None:
        self._listener.endpointer.caller_active()  # not silent: no prompt, no timeout
        if (keys := self._keypad.press(digit)) is not None:
            self._answering.keypad_turn(keys)

    def _keypad_due(self, deadline: float) -> None:
        self._events.put_nowait(_KeypadDue(deadline))

    # ── the end ──────────────────────────────────────────────────────────────────────────
    async def _finish(self, event: EndCall) -> None:
        if self._judging:  # what is being said is said: the caller's words are not judged
            self._judging = False
            self._floor.resume()
        await self._end.finish(
            event.reason,
            event.final_message,
            pending=self._floor.pending_for_end(),
            quiet=partial(self._floor.interrupt, queued_says=True),
            say=self._floor.say_now,
        )

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    def _open_since(self) -> float | None:
        """When the earliest turn still open started (wall time), if any is."""
        opened = (
            self._floor.open_since(),
            self._hearing.open_since(),
            self._keypad.started_at,
        )
        return min((t for t in opened if t is not None), default=None)


@dataclass(slots=True, frozen=True)
class _Turn(Frame):
    utterance: UserUtterance
    decided: float  # perf_counter at the endpointing decision
    decided_wall: float  # and the wall clock then (where the turn's audio ends)


@dataclass(slots=True, frozen=True)
class _Verdict(Frame):
    """The words of a caller's utterance over the held assistant (or what stopped them)."""

    turn: _Turn
    user: CallerTurn
    heard: str | Exception
    voiced: int  # milliseconds of it pitched (up to the minimum)


async def _judged(
    turn: _Turn, user: CallerTurn, enough_ms: int, tell: Callable[[Frame], None]
) -> None:
    """The words of the caller's utterance over the held assistant, and how much of it was
    voiced (up to ``enough_ms``), told as the verdict's ``_Verdict``."""
    utterance = turn.utterance
    voiced = pitched_ms(utterance.pcm, utterance.sample_rate, enough_ms=enough_ms)
    try:
        heard = await user.words.heard()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        return  # merged into the caller's next utterance: that one is judged
    tell(_Verdict(turn, user, heard, voiced))


def _stands(verdict: _Verdict, hearing: Hearing, judge: BargeInConfig) -> bool | None:
    """Whether the caller's words over the held assistant interrupt it (a recognizer's
    error does); None: they were merged into a later utterance, judged in its turn."""
    pending = hearing.pending()
    if pending is None or pending.words is not verdict.user.words:
        return None
    heard = verdict.heard
    return not isinstance(heard, str) or judge.stands(heard, verdict.voiced)


@dataclass(slots=True, frozen=True)
class _KeypadDue(Frame):
    """The keypad entry's timeout, set for ``deadline`` (loop time): stale once a later key
    moved it."""

    deadline: float


def hold_silence(engine: TurnEngine) -> None:
    """A transfer is under way on ``engine``'s call: its silence prompt and timeout wait until
    the assistant next speaks or the caller starts a turn (``Endpointer.hold_silence``)."""
    engine._listener.endpointer.hold_silence()


def _listener(cfg: ConversationConfig) -> Listener:
    """What hears the caller's audio: the VAD, the endpointer, the pre-roll and the echo gate."""
    return Listener(
        cfg.sample_rate,
        vad=cfg.vad,
        endpointing=cfg.endpointing,
        pre_roll_ms=cfg.pre_roll_ms,
        echo=cfg.echo,
    )
