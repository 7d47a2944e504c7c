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
from typing import TypeVar

from msgspec import UnsetType

from voicedock.calls.assistants.config import (
    DEFAULT_LLM_FILLER_DELAY_S,
    HANG_UP_AFTER_FIRST_MESSAGE,
    KEYPAD,
    LLM_FILLER,
)
from voicedock.calls.assistants.plans import Keypad, LlmFiller, ToolFiller, plan
from voicedock.calls.tools.config import assistant_tools, tool_specs
from voicedock.config import EchoSettings, EndpointingSettings
from voicedock.domain.json import JsonValue
from voicedock.pipeline.analysis import AnalysisPlan
from voicedock.pipeline.conversation_config import ConversationConfig
from voicedock.pipeline.echo import EchoGateConfig
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.keypad import KeypadPlan


def conversation_config(
    assistant_config: Mapping[str, JsonValue],
    sample_rate: int,
    *,
    context: str | None = None,
    base: ConversationConfig | None = None,
) -> ConversationConfig:
    """The dialogue settings of one call: ``base`` with the assistant's prompt and messages."""
    cfg = base or ConversationConfig()
    system, history = _seeded_messages(assistant_config.get("llm_config"))
    own = assistant_config.get("system_prompt")
    parts = [p for p in (own if isinstance(own, str) else None, *system) if p and p.strip()]
    prompt: str | None = "\n\n".join(p.strip() for p in parts) if parts else None
    facts = assistant_config.get("facts")
    if isinstance(facts, Mapping) and facts:
        lines = "\n".join(f"- {name}: {value}" for name, value in facts.items())
        prompt = f"{prompt or cfg.system_prompt}\n\nFacts:\n{lines}"
    first = assistant_config.get("first_message")
    prompt_text = assistant_config.get("silence_prompt_message")
    timing = cfg.endpointing

    def ms(key: str, default: int | None) -> int | None:  # a limit it sets (seconds), else default
        seconds = assistant_config.get(key)
        return seconds * 1000 if isinstance(seconds, int) else default

    endpointing = dataclasses.replace(
        timing,
        silence_timeout_ms=ms("silence_timeout_seconds", timing.silence_timeout_ms),
        max_duration_ms=ms("max_duration_seconds", timing.max_duration_ms),
        silence_prompt_ms=ms("silence_prompt_seconds", timing.silence_prompt_ms),
    )
    dead_air = assistant_config.get("dead_air_seconds")
    dead_air_text = assistant_config.get("dead_air_message")
    llm_filler, llm_delay, phrases = plan(assistant_config.get(LLM_FILLER), LlmFiller), None, None
    if llm_filler is not None:  # without it: no LLM filler
        llm_delay = _set_or(llm_filler.delay_seconds, DEFAULT_LLM_FILLER_DELAY_S)
        phrases = _set_or(llm_filler.messages, None)
    filler = plan(assistant_config.get("tool_filler"), ToolFiller) or ToolFiller()
    message = _set_or(filler.message, cfg.tool_filler_message)
    delay = _given(filler.delay_seconds, cfg.tool_filler_delay_s)
    return dataclasses.replace(
        cfg,
        dead_air_s=float(dead_air) if isinstance(dead_air, int) else cfg.dead_air_s,
        dead_air_message=_text_or(dead_air_text, cfg.dead_air_message),
        tool_filler_message=message or None,
        tool_filler_delay_s=float(delay),
        llm_filler_delay_s=float(llm_delay) if llm_delay is not None else None,
        llm_filler_messages=tuple(phrases) if phrases else cfg.llm_filler_messages,
        endpointing=endpointing,
        sample_rate=sample_rate,
        system_prompt=prompt if isinstance(prompt, str) and prompt else cfg.system_prompt,
        first_message=first if isinstance(first, str) and first else cfg.first_message,
        silence_prompt_message=_text_or(prompt_text, cfg.silence_prompt_message),
        context=context or cfg.context,
        history=cfg.history + history,
        tools=tool_specs(assistant_tools(assistant_config)) or cfg.tools,
        hang_up_after_first_message=assistant_config.get(HANG_UP_AFTER_FIRST_MESSAGE) is True,
        keypad=keypad_plan(assistant_config.get(KEYPAD), cfg.keypad),
    )


def keypad_plan(stored: JsonValue, default: KeypadPlan) -> KeypadPlan:
    """The assistant's ``keypad`` plan (checked when it was saved) over ``default``; without
    one, ``default``."""
    keypad = plan(stored, Keypad)
    if keypad is None:
        return default
    return KeypadPlan(
        timeout_s=float(_given(keypad.timeout_seconds, default.timeout_s)),
        terminator=_set_or(keypad.terminator, default.terminator),  # None: no terminator
        max_digits=_given(keypad.max_digits, default.max_digits),
        enabled=_given(keypad.enabled, default.enabled),
    )


T = TypeVar("T")
D = TypeVar("D")


def _set_or(value: T | UnsetType, default: D) -> T | D:
    """A plan's setting, or ``default`` where the plan leaves it out."""
    return default if isinstance(value, UnsetType) else value


def _given(value: T | UnsetType | None, default: T) -> T:
    """A plan's setting, or ``default`` where the plan leaves it out or sets it null."""
    return default if value is None or isinstance(value, UnsetType) else value


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
    timing = dataclasses.replace(
        cfg.endpointing,
        mode=endpointing.mode,
        end_silence_ms=endpointing.end_silence_ms,
        complete_silence_ms=endpointing.complete_silence_ms,
        incomplete_silence_ms=endpointing.incomplete_silence_ms,
    )
    return dataclasses.replace(cfg, endpointing=timing)


def analysis_plan(assistant_config: Mapping[str, JsonValue]) -> AnalysisPlan | None:
    """The assistant's ``analysis_plan`` (checked when it was saved), if it has one."""
    plan = assistant_config.get("analysis_plan")
    if not isinstance(plan, Mapping):
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


def _seeded_messages(llm_config: object) -> tuple[list[str], tuple[ChatMessage, ...]]:
    """``llm_config.messages`` → (system texts, earlier user/assistant turns)."""
    messages = llm_config.get("messages") if isinstance(llm_config, Mapping) else None
    system: list[str] = []
    history: list[ChatMessage] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, Mapping):
            continue
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, str) or not content.strip():
            continue
        if role == "system":
            system.append(content)
        elif role == "user":
            history.append(ChatMessage("user", content.strip()))
        elif role == "assistant":
            history.append(ChatMessage("assistant", content.strip()))
    return system, tuple(history)
