"""Which dialogue a live call runs, made on its speech providers: the turn engine, or the
speech-to-speech one, going on with a pipeline when its session fails if the assistant names
one; for a squad's call the member speaking, then each member the model hands the call to
(``pipeline/dialogue/squad_dialogue.py``), on its own providers, prompt, tools and voice.

The members' providers are made here and closed by ``aclose()``; the call's own providers
belong to the live conversation (``conversation.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from functools import partial

from voicedock.calls.live.config import conversation_config, going_on
from voicedock.calls.live.options import LiveOptions
from voicedock.calls.live.providers import SpeechProviders
from voicedock.calls.live.squad import SquadMembers
from voicedock.domain.squads import SUMMARY
from voicedock.media.call_media import CallMedia
from voicedock.media.sink import MediaSink
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.carried import carried_summary
from voicedock.pipeline.dialogue.events import CallEvents
from voicedock.pipeline.dialogue.realtime_dialogue import RealtimeDialogue, RealtimeParts
from voicedock.pipeline.dialogue.realtime_fallback import RealtimeWithPipeline
from voicedock.pipeline.dialogue.squad_dialogue import SquadDialogue
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine, TurnParts
from voicedock.pipeline.fallback_plans.realtime import RealtimePlan
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.pipeline.providers.realtime import RealtimeSpeech
from voicedock.pipeline.tools import ToolExecutor
from voicedock.weak import weak_method

__all__ = ["CallDialogues"]


class CallDialogues:
    """The dialogues of one live call: ``first`` when it starts, a squad member's at each
    handoff (the members' providers are closed by ``aclose``)."""

    def __init__(
        self,
        media: CallMedia,
        events: CallEvents,
        options: LiveOptions,
        squad: SquadMembers | None,
        sample_rate: int,
    ) -> None:
        self._media, self._events, self._options = media, events, options
        self._squad, self._sample_rate = squad, sample_rate
        self._providers: SpeechProviders | None = None  # the call's own (its conversation's)
        self._member_providers: list[SpeechProviders] = []  # the next members' (closed here)
        self._began = 0.0  # when the call's dialogue started (the loop's clock)

    def begin(self) -> None:
        """The call's dialogue starts now: a squad member's configuration goes on from here."""
        self._began = asyncio.get_running_loop().time()

    def first(
        self,
        providers: SpeechProviders,
        config: ConversationConfig,
        tools: ToolExecutor | None,
    ) -> Dialogue:
        """The call's dialogue on its own ``providers``; a squad's call runs it as its first
        member's, going on with the member it hands the call to."""
        self._providers = providers
        conversation = self._dialogue(providers, config, tools)
        if self._squad is not None:
            conversation = SquadDialogue(
                conversation, weak_method(self._next_member), sample_rate=self._sample_rate
            )
        return conversation

    async def aclose(self) -> None:
        """Close the squad members' providers (idempotent)."""
        members, self._member_providers = self._member_providers, []
        for providers in members:
            await providers.aclose()

    def _dialogue(
        self,
        providers: SpeechProviders,
        call_config: ConversationConfig,
        tools: ToolExecutor | None,
    ) -> Dialogue:
        """The call's dialogue on its providers (a squad's member's: on the member's): the
        turn engine, or the speech-to-speech one, going on with a pipeline when its session
        fails if the assistant names one (made as a pipeline call's turn engine is)."""
        events, sink = self._events, MediaSink(self._media)
        # The factories hold what they use, not these dialogues: the speech-to-speech call
        # keeps them, and the live conversation holds that call.

        def pipeline(
            engines: SpeechProviders | RealtimePlan, config: ConversationConfig
        ) -> TurnEngine:
            if engines.stt is None or engines.llm is None:
                raise ProviderConfigError("a pipeline call needs STT and an LLM")
            return TurnEngine(
                TurnParts(
                    stt=engines.stt,
                    llm=engines.llm,
                    tts=engines.tts,
                    sink=sink,
                    events=events,
                    tools=tools,
                    endpoints=engines.endpoints,
                    predict_turn=providers.predict_turn,
                    languages=providers.languages,
                ),
                config,
            )

        def speech_to_speech(
            speech: RealtimeSpeech, hand_over_after_s: float | None = None
        ) -> RealtimeDialogue:
            return RealtimeDialogue(
                RealtimeParts(
                    speech=speech, tts=providers.tts, sink=sink, events=events, tools=tools
                ),
                call_config,
                hand_over_after_s=hand_over_after_s,
            )

        if providers.realtime is None:
            return pipeline(providers, call_config)
        if (plan := providers.pipeline) is None:
            return speech_to_speech(providers.realtime)
        return RealtimeWithPipeline(
            session=partial(speech_to_speech, providers.realtime),
            pipeline=partial(pipeline, plan),
            plan=plan,
            config=call_config,
        )

    async def _next_member(self, name: str, carried: tuple[ChatMessage, ...]) -> Dialogue:
        """The dialogue of the squad's member ``name``, whom the model handed the call to:
        on its own providers, prompt, tools and voice, the call so far as its model's history,
        the transition its first words."""
        squad = self._squad
        assert squad is not None  # only a squad's call hands over
        member = squad.call.squad.member(name)
        assert member is not None  # the handoff was checked against the squad
        first = squad.call.transition(name)
        handing = self._member_providers[-1] if self._member_providers else self._providers
        providers = await squad.providers(member)
        self._member_providers.append(providers)
        if member.carry_over == SUMMARY:  # summarised by the model that had the call
            llm = handing.llm if handing is not None and handing.llm else providers.llm
            carried = await carried_summary(carried, llm)
        options = self._options
        config = conversation_config(
            member.config, self._sample_rate, context=options.context, base=options.config
        )
        config = going_on(config, round((asyncio.get_running_loop().time() - self._began) * 1000))
        config = dataclasses.replace(
            squad.offered(config, member), carried=carried, first_message=first
        )
        handoff = squad.call.handoffs[-1]
        squad.call.moved(name)
        self._events.emit(handoff)
        return self._dialogue(providers, config, squad.executor(member))
