"""The operator's language models of test runs (``[rehearsal] caller_model``, ``judge_model``):
an OpenAI-compatible chat endpoint asked for one whole answer at a time, through the client
every OpenAI-compatible engine uses (``pipeline/providers/openai_compat.py``).

The endpoint is the operator's, set in its file only: no organization names it, so it is
reached as the operator's ``[speech]`` engines are, without the egress policy that keeps a
tenant's URLs off the operator's own services."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from voicedock.config import RehearsalModelSettings
from voicedock.domain.assistant_config import LlmConfig
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import Llm
from voicedock.pipeline.providers.registry import create_llm


class ChatModel(Protocol):
    """A language model's whole answer to ``messages``. Raises ``ProviderError``."""

    async def answer(self, messages: Sequence[ChatMessage]) -> str: ...


class OperatorModel:
    """``ChatModel`` over the operator's OpenAI-compatible endpoint."""

    def __init__(
        self,
        settings: RehearsalModelSettings,
        create: Callable[[LlmConfig], Llm] = create_llm,
    ) -> None:
        self._config = LlmConfig(
            provider="openai-compatible",
            base_url=settings.base_url,
            model=settings.model,
            api_key=settings.api_key or None,
            temperature=settings.temperature,
            read_timeout_s=settings.timeout_s,
            total_timeout_s=settings.timeout_s,
        )
        self._create = create

    async def answer(self, messages: Sequence[ChatMessage]) -> str:
        llm = self._create(self._config)
        try:
            return "".join([chunk async for chunk in llm.stream(messages)])
        finally:
            await llm.aclose()


def operator_model(settings: RehearsalModelSettings) -> ChatModel | None:
    """The model ``settings`` name (None: none is configured)."""
    return OperatorModel(settings) if settings.configured else None


__all__ = ["ChatModel", "OperatorModel", "operator_model"]
