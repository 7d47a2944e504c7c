"""A deterministic, rule-based conversation policy: the offline default `Llm`.

This is a scripted demo, not an AI. It greets, repeats back what it understood, answers from
the assistant's configured facts (keyword → answer), says goodbye when the caller does, and
acknowledges injected context when asked to respond to it. Same input, same reply, always,
which is also what makes it useful in tests and benchmarks.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import ProviderConfigError

_GOODBYE = re.compile(
    r"\b(bye|goodbye|good bye|that'?s all|that is all|hang up|no thanks|nothing else)\b", re.I
)
_THANKS = re.compile(r"\b(thanks|thank you)\b", re.I)
_ECHO_WORDS = 12


class RuleBasedPolicy:
    """`Llm` implementation that follows fixed rules over the conversation so far."""

    def __init__(
        self,
        facts: Mapping[str, str] | None = None,
        *,
        greeting: str = "Hello! How can I help you today?",
        closing: str = "Thank you for calling. Goodbye!",
        fallback: str = "Could you tell me a bit more about what you need?",
    ) -> None:
        self._facts: list[tuple[re.Pattern[str], str]] = []
        for keys, answer in (facts or {}).items():
            alternatives = [k.strip() for k in re.split(r"[|,]", keys) if k.strip()]
            if not alternatives or not answer.strip():
                raise ProviderConfigError("llm.facts needs non-empty keywords and answers")
            words = "|".join(re.escape(k) for k in alternatives)
            self._facts.append((re.compile(rf"\b(?:{words})\b", re.I), answer.strip()))
        self._greeting = greeting
        self._closing = closing
        self._fallback = fallback

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RuleBasedPolicy:
        facts = config.get("facts", {})
        if not isinstance(facts, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in facts.items()
        ):
            raise ProviderConfigError("llm.facts must map keyword strings to answer strings")
        texts = {k: config[k] for k in ("greeting", "closing", "fallback") if k in config}
        for key, value in texts.items():
            if not isinstance(value, str) or not value.strip():
                raise ProviderConfigError(f"llm.{key} must be a non-empty string")
        return cls(facts, **texts)

    def reply(self, messages: Sequence[ChatMessage]) -> str:
        """The whole reply for this context (what `stream` yields, in one piece)."""
        last = messages[-1] if messages else None
        if last is None or last.role == "assistant":
            return self._greeting
        if last.role == "system":
            return f"I have an update for you: {last.content.strip()}"
        said = last.content.strip()
        if not said:
            return self._fallback
        if _GOODBYE.search(said):
            return self._closing
        answers = [answer for pattern, answer in self._facts if pattern.search(said)]
        if answers:
            return " ".join(dict.fromkeys(answers))
        if _THANKS.search(said):
            return "You're welcome. Is there anything else I can help with?"
        heard = " ".join(said.split()[:_ECHO_WORDS]).rstrip(".!?,")
        return f"I understood: {heard}. {self._fallback}"

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        for word in re.findall(r"\S+\s*", self.reply(messages)):
            yield word

    async def aclose(self) -> None:
        return None
