"""A speech-to-speech call that goes on with a pipeline when its session fails.

``RealtimeWithPipeline`` is the call's ``Dialogue`` when a speech-to-speech assistant names a
fallback plan (``llm_config.fallback_plan``: ``pipeline/fallback_plans/realtime.py``
``RealtimePlan``). It runs the speech-to-speech dialogue (``realtime_dialogue.py``) unless the
session's breaker is open; when the session fails (refused, dropped, a server error or a failed
response, no answer to the caller within the plan's ``attempt_timeout_s``) the move is reported
(a ``provider-switch`` event, engine ``realtime``) and the call goes on with the turn engine
(``turn_engine.py``) on the pipeline's STT, LLM and TTS, to its end. The call makes both
engines (``calls/live/conversation.py``: the pipeline as a pipeline call's turn engine is
made); this module moves the call from the one to the other:

* what the caller heard stays said: what was being played when the session failed is played
  to its end (within ``fallback_timeout_s``), and each message is in the transcript once, as
  heard;
* the conversation goes on: the transcript's turns and the context injected into the session
  become the model's history (after the assistant's seeded messages), under the same
  instructions; the first message is not said again (the pipeline says it when the session
  never opened);
* the caller neither repeats themself nor waits for an answer that cannot come: their words
  the session neither transcribed nor answered, and what they said during the move, are heard
  by the pipeline as a turn of theirs (transcribed and answered); otherwise a reply the session
  left midway is continued (the model told not to repeat it), a turn left unanswered answered;
* what is asked meanwhile (say, inject-context, end-call, keys) waits for the pipeline, then
  goes to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Self

from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.carried import carried_history
from voicedock.pipeline.dialogue.chain import DialogueChain
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.realtime.handover import SESSION_FAILED, Handover
from voicedock.pipeline.dialogue.realtime_dialogue import RealtimeDialogue
from voicedock.pipeline.dialogue.turn_engine import TurnEngine
from voicedock.pipeline.fallback_plans.realtime import RealtimePlan
from voicedock.pipeline.pools.provider_health import Attempt
from voicedock.pipeline.providers.base import ProviderError

# What the pipeline's model is told where the session left a reply midway, or a turn
# unanswered (the caller heard the reply's part as the transcript has it).
CONTINUE_NOTE = (
    "Your reply above was cut off by a technical fault where it ends. Continue it from there; "
    "do not repeat anything already said."
)
ANSWER_NOTE = "A technical fault held up your answer: answer the caller's last words now."


class RealtimeWithPipeline(DialogueChain):
    """One call's dialogue: the speech-to-speech session, then (failed) the pipeline."""

    def __init__(
        self,
        *,
        session: Callable[[float], RealtimeDialogue],
        pipeline: Callable[[ConversationConfig], TurnEngine],
        plan: RealtimePlan,
        config: ConversationConfig | None = None,
    ) -> None:
        """``session`` makes the speech-to-speech dialogue, a failed session when it does not
        answer within the given seconds; ``pipeline`` the turn engine on the plan's engines,
        with the configuration given; ``plan`` holds the pipeline and the session's
        breaker; ``config`` is the call's."""
        self.config = config or ConversationConfig()
        super().__init__(self.config.sample_rate, "speech-to-speech call")
        self._make_session, self._make_pipeline, self._plan = session, pipeline, plan
        self._session: RealtimeDialogue | None = None
        self._engine: TurnEngine | None = None
        self._attempt: Attempt | None = None  # the session's, on the node's breakers

    # ── lifecycle ────────────────────────────────────────────────────────────────────────
    async def __aenter__(self) -> Self:
        """Open the session (or, its breaker open or the session refused, the pipeline)."""
        await self._tasks.start()
        self._attempt = self._plan.attempt()
        if self._attempt is not None:
            session = self._make_session(self._plan.attempt_timeout_s)
            try:
                await session.__aenter__()
            except ProviderError as exc:
                self._plan.failed(self._attempt, exc)
                self._attempt = None
            else:
                self._session = session
                self._tasks.spawn(self._follow(session))
                return self
        self._engine = engine = self._make_pipeline(self.config)
        await engine.__aenter__()
        self._tasks.spawn(self._follow_pipeline(engine))
        return self

    async def _close_dialogues(self, on_quiet: Callable[[], Awaitable[None]] | None) -> None:
        if self._session is not None:
            await self._session.aclose(None if self._engine is not None else on_quiet)
        if self._engine is not None:
            await self._engine.aclose(on_quiet)
        self._session_served()

    # ── what both engines hear and say ───────────────────────────────────────────────────
    @property
    def assistant_audible(self) -> bool:
        return any(d.assistant_audible for d in (self._session, self._engine) if d is not None)

    @property
    def moving(self) -> bool:
        """The session failed and the pipeline does not listen yet."""
        handing_over = self._session is not None and self._session.handover.handing_over
        return self._engine is None and (self._moving or handing_over)

    def feed_audio(self, pcm: bytes) -> None:
        if self._moving:
            self._held.hold(pcm)
            return
        dialogue = self._engine or self._session  # handing over, the session keeps it
        if dialogue is not None:
            dialogue.feed_audio(pcm)

    @property
    def handed_over_to(self) -> str | None:
        """The squad's member whichever engine spoke handed the call over to."""
        engine = self._engine or self._session
        return None if engine is None else engine.handed_over_to

    def hand_over(self, member: str) -> None:
        """Hand the call over to the squad's ``member`` (``pipeline/dialogue/squad_dialogue.py``),
        whichever engine speaks; dropped during the move to the pipeline."""
        if (speaking := self._speaking()) is not None:
            speaking.hand_over(member)

    # ── the move ─────────────────────────────────────────────────────────────────────────
    async def _follow(self, session: RealtimeDialogue) -> None:
        reason = await session.wait_ended()
        handover = session.handover.take() if reason == SESSION_FAILED else None
        if handover is None:
            self._session_served()
            self._end(reason)
            return
        self._moving = True  # from now on the caller's audio waits for the pipeline
        self._plan.failed(self._attempt, handover.error)
        self._attempt = None
        async with self._move:
            await session.aclose()  # what was cut is in its transcript, as heard
            said = carried_history([*session.transcript, *session.context_notes])
            history = self.config.history + said
            config = dataclasses.replace(self.config, first_message=None, history=history)
            self._engine = engine = self._make_pipeline(config)
            await engine.__aenter__()
            self._go_on(engine, handover)
        await self._follow_pipeline(engine)

    def _go_on(self, engine: TurnEngine, handover: Handover) -> None:
        """The pipeline takes the caller's words held for it and what was asked meanwhile,
        then answers what the session left unanswered."""
        self._moving = False
        self._went_on(engine, self._tasks, heard_before=handover.unanswered)
        if handover.caller_turn:
            return  # heard again above: answered as the caller's turn
        if handover.reply_cut:
            self._tasks.spawn(engine.inject_context(CONTINUE_NOTE, trigger_response=True))
        elif handover.awaiting_reply:
            self._tasks.spawn(engine.inject_context(ANSWER_NOTE, trigger_response=True))

    async def _follow_pipeline(self, engine: TurnEngine) -> None:
        self._end(await engine.wait_ended())

    # ── helpers ──────────────────────────────────────────────────────────────────────────
    def _speaking(self) -> TurnEngine | RealtimeDialogue | None:
        """The engine speaking now (None: the move to the pipeline is under way)."""
        return None if self.moving else self._engine or self._session

    def _chain(self) -> list[Dialogue]:
        return [d for d in (self._session, self._engine) if d is not None]

    def _session_served(self) -> None:
        """The session lasted the call (or as long as it ran): it succeeded."""
        if self._attempt is not None:
            self._attempt.succeeded()
            self._attempt = None
