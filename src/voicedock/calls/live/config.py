"""The dialogue settings of one call, from its resolved assistant configuration.

The model's instructions are the assistant's ``system_prompt`` followed by the ``system``
messages of ``llm_config.messages`` (the API's way to give them; hybrid mode overrides them
per call), then ``facts``; with neither, the built-in default prompt. The ``user`` and
``assistant`` messages of ``llm_config.messages`` are earlier turns: the model sees them, in
order, before the call's own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec
from msgspec import UnsetType

from voicedock.calls.live.turn_choice import turn_detection
from voicedock.calls.tools.config import assistant_tools, tool_specs
from voicedock.config import BargeInSettings, EchoSettings, EndpointingSettings, VadSettings
from voicedock.domain.assistant_config import (
    DEFAULT_LLM_FILLER_DELAY_S,
    AssistantConfig,
    Keypad,
    RedactionPlan,
    Section,
    SeedMessage,
    ToolFiller,
    given,
    set_or,
)
from voicedock.domain.redaction import DEFAULT_REGION, Redactor
from voicedock.pipeline.analysis.post_call import AnalysisPlan
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.words_decide import BargeInConfig
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.hearing.echo import EchoGateConfig
from voicedock.pipeline.hearing.keypad import KeypadPlan

if TYPE_CHECKING:  # the detector itself is loaded with a call's pipeline, not with the API
    from voicedock.pipeline.hearing.vad import VadConfig


def going_on(config: ConversationConfig, elapsed_ms: int) -> ConversationConfig:
    """``config`` for a dialogue that goes on with a call ``elapsed_ms`` in (a squad's next
    member): its max duration counted from the call's start, not its own."""
    limit = config.endpointing.max_duration_ms
    if limit is None:
        return config
    endpointing = dataclasses.replace(
        config.endpointing, max_duration_ms=max(1, limit - elapsed_ms)
    )
    return dataclasses.replace(config, endpointing=endpointing)


def conversation_config(
    assistant_config: AssistantConfig,
    sample_rate: int,
    *,
    context: str | None = None,
    base: ConversationConfig | None = None,
) -> ConversationConfig:
    """The dialogue settings of one call: ``base`` with the assistant's prompt and messages."""
    cfg = base or ConversationConfig()
    c = assistant_config
    system, history = _seeded_messages(set_or(c.llm_config, None))
    parts = [p for p in (set_or(c.system_prompt, None), *system) if p and p.strip()]
    prompt: str | None = "\n\n".join(p.strip() for p in parts) if parts else None
    facts = set_or(c.facts, None)
    if facts:
        lines = "\n".join(f"- {name}: {value}" for name, value in facts.items())
        prompt = f"{prompt or cfg.system_prompt}\n\nFacts:\n{lines}"
    first = set_or(c.first_message, None)
    plan = set_or(c.redaction_plan, None)
    redactor, model_sees = redaction(plan)
    timing = cfg.endpointing

    def ms(seconds: int | UnsetType, default: int | None) -> int | None:  # a limit it sets
        return seconds * 1000 if isinstance(seconds, int) else default

    endpointing = dataclasses.replace(
        timing,
        silence_timeout_ms=ms(c.silence_timeout_seconds, timing.silence_timeout_ms),
        max_duration_ms=ms(c.max_duration_seconds, timing.max_duration_ms),
        silence_prompt_ms=ms(c.silence_prompt_seconds, timing.silence_prompt_ms),
        turn_detection=turn_detection(c, timing.turn_detection),
    )
    llm_filler, llm_delay, phrases = set_or(c.llm_filler, None), None, None
    if llm_filler is not None:  # without it: no LLM filler
        llm_delay = set_or(llm_filler.delay_seconds, DEFAULT_LLM_FILLER_DELAY_S)
        phrases = set_or(llm_filler.messages, None)
    filler = set_or(c.tool_filler, ToolFiller())
    message = set_or(filler.message, cfg.tool_filler_message)
    delay = given(filler.delay_seconds, cfg.tool_filler_delay_s)
    return dataclasses.replace(
        cfg,
        dead_air_s=float(c.dead_air_seconds)
        if isinstance(c.dead_air_seconds, int)
        else cfg.dead_air_s,
        dead_air_message=_text_or(c.dead_air_message, cfg.dead_air_message),
        tool_filler_message=message or None,
        tool_filler_delay_s=float(delay),
        llm_filler_delay_s=float(llm_delay) if llm_delay is not None else None,
        llm_filler_messages=tuple(phrases) if phrases else cfg.llm_filler_messages,
        endpointing=endpointing,
        sample_rate=sample_rate,
        vad=_vad_at(cfg.vad, sample_rate),
        noise_suppression=given(c.noise_suppression, cfg.noise_suppression),
        system_prompt=prompt if isinstance(prompt, str) and prompt else cfg.system_prompt,
        first_message=first if first else cfg.first_message,
        silence_prompt_message=_text_or(c.silence_prompt_message, cfg.silence_prompt_message),
        context=context or cfg.context,
        history=cfg.history + history,
        tools=tool_specs(assistant_tools(c)) or cfg.tools,
        hang_up_after_first_message=c.hang_up_after_first_message is True,
        keypad=keypad_plan(set_or(c.keypad, None), cfg.keypad),
        barge_in=barge_in(c, cfg.barge_in),
        redactor=redactor if plan is not None else cfg.redactor,
        model_sees_redacted=model_sees if plan is not None else cfg.model_sees_redacted,
        flow=set_or(c.flow, None),
    )


def barge_in(assistant_config: AssistantConfig, default: BargeInConfig) -> BargeInConfig:
    """Whether the caller's words decide a barge-in (the assistant's ``barge_in_on_words``,
    left out ``default``'s, the operator's), with the backchannels of the call's STT
    language (``stt_config.language``; none set: every language's)."""
    on_words = set_or(assistant_config.barge_in_on_words, default.on_words)
    language = (set_or(assistant_config.stt_config, None) or {}).get("language")
    chosen = default.for_language(language if isinstance(language, str) else None)
    return dataclasses.replace(chosen, on_words=on_words)


def with_barge_in_settings(
    base: ConversationConfig | None, barge_in: BargeInSettings
) -> ConversationConfig:
    """``base`` (or the defaults) with ``[speech.barge_in]`` (checked at start-up): the same
    for every call of the service."""
    cfg = base or ConversationConfig()
    lists = tuple(barge_in.lists().items())
    judged = BargeInConfig(
        on_words=barge_in.on_words, min_voiced_ms=barge_in.min_voiced_ms, languages=lists
    )
    return dataclasses.replace(cfg, barge_in=judged.for_language(None))


def redaction(plan: RedactionPlan | None) -> tuple[Redactor | None, bool]:
    """The redactor of a ``redaction_plan`` (None: it redacts nothing), and whether the model
    sees the caller's words redacted."""
    if plan is None:
        return None, True
    patterns = [(p.name, p.regex) for p in set_or(plan.custom_patterns, [])]
    categories = set_or(plan.categories, [])
    redactor = None
    if categories or patterns:
        redactor = Redactor(categories, patterns, region=set_or(plan.region, DEFAULT_REGION))
    return redactor, set_or(plan.model_sees, "redacted") == "redacted"


def keypad_plan(keypad: Keypad | None, default: KeypadPlan) -> KeypadPlan:
    """The assistant's ``keypad`` plan over ``default``; without one, ``default``."""
    if keypad is None:
        return default
    return KeypadPlan(
        timeout_s=float(given(keypad.timeout_seconds, default.timeout_s)),
        terminator=set_or(keypad.terminator, default.terminator),  # None: no terminator
        max_digits=given(keypad.max_digits, default.max_digits),
        enabled=given(keypad.enabled, default.enabled),
    )


def with_echo_settings(base: ConversationConfig | None, echo: EchoSettings) -> ConversationConfig:
    """``base`` (or the defaults) with the echo gate of ``[speech.echo]`` (checked at start-up):
    the same for every call of the service."""
    gate = EchoGateConfig(
        enabled=echo.enabled,
        max_delay_ms=echo.max_delay_ms,
        correlation=echo.correlation,
        min_cancel_db=echo.min_cancel_db,
    )
    return dataclasses.replace(base or ConversationConfig(), echo=gate)


def with_endpointing_settings(
    base: ConversationConfig | None, endpointing: EndpointingSettings
) -> ConversationConfig:
    """``base`` (or the defaults) with the turn-end timing of ``[speech.endpointing]``
    (checked at start-up): the same for every call of the service."""
    cfg = base or ConversationConfig()
    given = msgspec.structs.asdict(endpointing)  # each setting is the pipeline's field of its name
    timing = dataclasses.replace(cfg.endpointing, **given)
    return dataclasses.replace(cfg, endpointing=timing)


def with_vad_settings(base: ConversationConfig | None, vad: VadSettings) -> ConversationConfig:
    """``base`` (or the defaults) with the caller's voice activity detector of ``[speech.vad]``
    (checked at start-up): the same for every call of the service."""
    from voicedock.pipeline.hearing.vad import VadConfig

    cfg = base or ConversationConfig()
    detector = VadConfig(engine=vad.engine, threshold=vad.silero_threshold)
    return dataclasses.replace(cfg, vad=detector)


def _vad_at(vad: VadConfig | None, sample_rate: int) -> VadConfig | None:
    """The service's VAD settings at a call's rate (Silero VAD hears 8 or 16 kHz; a call at
    another rate is heard by webrtcvad)."""
    if vad is None or vad.sample_rate == sample_rate:
        return vad
    from voicedock.pipeline.hearing.vad import SILERO_RATES

    engine = vad.engine if sample_rate in SILERO_RATES else "webrtc"
    return dataclasses.replace(vad, sample_rate=sample_rate, engine=engine)


def analysis_plan(assistant_config: AssistantConfig) -> AnalysisPlan | None:
    """The assistant's ``analysis_plan`` (checked when it was saved), if it has one."""
    plan = set_or(assistant_config.analysis_plan, None)
    if plan is None:
        return None
    schema = plan.get("structured_data_schema")
    summary, rubric = plan.get("summary_prompt"), plan.get("success_evaluation_rubric")
    return AnalysisPlan(
        summary_prompt=summary if isinstance(summary, str) else None,
        structured_data_schema=schema if isinstance(schema, Mapping) else None,
        success_evaluation_rubric=rubric if isinstance(rubric, str) else None,
    )


def _text_or(value: object, default: str) -> str:
    return value if isinstance(value, str) and value.strip() else default


def _seeded_messages(llm_config: Section | None) -> tuple[list[str], tuple[ChatMessage, ...]]:
    """``llm_config.messages`` (checked when saved) → (system texts, earlier turns)."""
    try:
        messages = msgspec.convert((llm_config or {}).get("messages") or [], list[SeedMessage])
    except msgspec.ValidationError:
        messages = []
    system: list[str] = []
    history: list[ChatMessage] = []
    for message in messages:
        content = message.content
        if not content.strip():
            continue
        if message.role == "system":
            system.append(content)
        else:
            history.append(ChatMessage(message.role, content.strip()))
    return system, tuple(history)
