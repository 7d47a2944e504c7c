"""The dialogue settings of one call, from its resolved assistant configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from voicedock.pipeline.conversation_config import ConversationConfig


def conversation_config(
    assistant_config: Mapping[str, Any],
    sample_rate: int,
    *,
    context: str | None = None,
    base: ConversationConfig | None = None,
) -> ConversationConfig:
    """The dialogue settings of one call: ``base`` with the assistant's prompt and messages."""
    cfg = base or ConversationConfig()
    prompt = assistant_config.get("system_prompt")
    facts = assistant_config.get("facts")
    if isinstance(facts, Mapping) and facts:
        lines = "\n".join(f"- {name}: {value}" for name, value in facts.items())
        prompt = f"{prompt or cfg.system_prompt}\n\nFacts:\n{lines}"
    first = assistant_config.get("first_message")
    endpointing = cfg.endpointing
    limits = {
        field: seconds * 1000
        for key, field in (
            ("silence_timeout_seconds", "silence_timeout_ms"),
            ("max_duration_seconds", "max_duration_ms"),
        )
        if isinstance(seconds := assistant_config.get(key), int)
    }
    if limits:
        endpointing = dataclasses.replace(endpointing, **limits)
    return dataclasses.replace(
        cfg,
        endpointing=endpointing,
        sample_rate=sample_rate,
        system_prompt=prompt if isinstance(prompt, str) and prompt else cfg.system_prompt,
        first_message=first if isinstance(first, str) and first else cfg.first_message,
        context=context or cfg.context,
    )
