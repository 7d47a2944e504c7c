"""A deterministic, rule-based conversation policy: the offline default `Llm`.

This is a scripted demo, not an AI. It greets, repeats back what it understood, answers from
the assistant's configured facts (keyword → answer), says goodbye when the caller does, and
acknowledges injected context when asked to respond to it. Same input, same reply, always,
which is also what makes it useful in tests and benchmarks.

Offered the built-in tools, it calls them on clear phrases, by rules:

* ``end_call``: after its goodbye, when the caller says goodbye ("bye", "that's all", ...);
* ``transfer_call``: "transfer me to / connect me to / put me through to / speak to / talk
  to <destination>" naming one of the tool's destinations (its ``enum``);
* ``send_dtmf``: "press <digits>" (0-9, * and #; spaces between them are dropped).

Later in a fallback plan (the models before it failed) it is ``PoliteClose``: it does not try
to converse, it says its ``closing`` (by default an apology and a goodbye) and ends the call.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence

from voicedock.domain.assistant_config import LlmConfig
from voicedock.domain.tenant_regex import TenantRegex
from voicedock.pipeline.frames import SUPERVISOR_PREFIX, ChatMessage, ToolCall
from voicedock.pipeline.providers.base import ProviderConfigError, ProviderUnavailableError
from voicedock.pipeline.tools import END_CALL, SEND_DTMF, TRANSFER_CALL, ToolSpec

_GOODBYE = re.compile(
    r"\b(bye|goodbye|good bye|that'?s all|that is all|hang up|no thanks|nothing else)\b", re.I
)
_THANKS = re.compile(r"\b(thanks|thank you)\b", re.I)
_TRANSFER = re.compile(
    r"\b(?:transfer|connect|put)\s+me\s+(?:through\s+)?to\s+(?:the\s+)?(.+)|"
    r"\b(?:speak|talk)\s+(?:to|with)\s+(?:the\s+|someone\s+(?:in|from)\s+)?(.+)",
    re.I,
)
_PRESS = re.compile(r"\bpress\s+([0-9*#](?:[\s,]*[0-9*#])*)", re.I)
_ECHO_WORDS = 12
CLOSE_POLITELY = (
    "I'm sorry, I can't help you any further right now. Please call again later. Goodbye!"
)


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
        self._facts: list[tuple[TenantRegex, str]] = []
        for keys, answer in (facts or {}).items():
            alternatives = [k.strip() for k in re.split(r"[|,]", keys) if k.strip()]
            if not alternatives or not answer.strip():
                raise ProviderConfigError("llm.facts needs non-empty keywords and answers")
            # The keywords are the organization's: matched by the linear-time engine.
            self._facts.append((TenantRegex.any_word(alternatives), answer.strip()))
        self._greeting = greeting
        self._closing = closing
        self._fallback = fallback

    @classmethod
    def from_config(cls, config: LlmConfig) -> RuleBasedPolicy:
        given = {
            "greeting": config.greeting,
            "closing": config.closing,
            "fallback": config.fallback,
        }
        texts: dict[str, str] = {}
        for key, value in given.items():
            if value is None:
                continue
            if not value.strip():
                raise ProviderConfigError(f"llm.{key} must be a non-empty string")
            texts[key] = value
        return cls(config.facts or {}, **texts)

    def reply(self, messages: Sequence[ChatMessage]) -> str:
        """The whole reply for this context (what `stream` yields, in one piece)."""
        last = messages[-1] if messages else None
        if last is None or last.role == "assistant":
            return self._greeting
        if last.role == "system":  # injected context; a supervisor's whisper without its frame
            update = last.content.strip().removeprefix(SUPERVISOR_PREFIX).strip()
            return f"I have an update for you: {update}"
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

    async def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ToolCall]:
        """``stream``, and the built-in tool its rules call for (see the module)."""
        last = messages[-1] if messages else None
        offered = {tool.name: tool for tool in tools}
        if last is not None and last.role == "tool":
            yield "Done."
            return
        said = last.content.strip() if last is not None and last.role == "user" else ""
        call = _rule_tool_call(said, offered, len(messages)) if said else None
        if call is None:
            yield self.reply(messages)
            return
        if call.name == END_CALL:
            yield self._closing
        elif call.name == TRANSFER_CALL:
            yield "Let me transfer you."
        yield call

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        for word in re.findall(r"\S+\s*", self.reply(messages)):
            yield word

    async def aclose(self) -> None:
        return None


class PoliteClose:
    """The rule-based policy taking over from the models of a fallback plan that failed: its
    reply, whatever was said, is ``closing`` and the ``end_call`` tool (offered or not), so
    the call ends politely. It answers nothing else (``stream``: a call's analysis, a warm
    transfer's decision, fall back to what they do without a model)."""

    ends_call = True

    def __init__(self, closing: str = CLOSE_POLITELY) -> None:
        self._closing = closing

    @classmethod
    def from_config(cls, config: LlmConfig) -> PoliteClose:
        if config.closing is not None and not config.closing.strip():
            raise ProviderConfigError("llm.closing must be a non-empty string")
        return cls(config.closing or CLOSE_POLITELY)

    async def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ToolCall]:
        yield self._closing
        yield ToolCall(f"rule_close_{len(messages)}", END_CALL, "{}")

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        nothing: tuple[str, ...] = ()  # it answers no question
        for text in nothing:
            yield text
        raise ProviderUnavailableError("the polite close answers no question")

    async def aclose(self) -> None:
        return None


def _rule_tool_call(said: str, offered: Mapping[str, ToolSpec], turn: int) -> ToolCall | None:
    """The built-in tool a clear phrase of the caller asks for, if it is offered."""
    call_id = f"rule_{turn}"
    if END_CALL in offered and _GOODBYE.search(said):
        return ToolCall(call_id, END_CALL, "{}")
    if TRANSFER_CALL in offered and (match := _TRANSFER.search(said)):
        wanted = (match.group(1) or match.group(2) or "").lower()
        for destination in _destinations(offered[TRANSFER_CALL]):
            if TenantRegex.any_word([destination]).search(wanted):
                return ToolCall(call_id, TRANSFER_CALL, json.dumps({"destination": destination}))
    if SEND_DTMF in offered and (match := _PRESS.search(said)):
        digits = re.sub(r"[\s,]", "", match.group(1))
        return ToolCall(call_id, SEND_DTMF, json.dumps({"digits": digits}))
    return None


def _destinations(tool: ToolSpec) -> list[str]:
    properties = tool.parameters.get("properties")
    destination = properties.get("destination") if isinstance(properties, Mapping) else None
    allowed = destination.get("enum") if isinstance(destination, Mapping) else None
    return [d for d in allowed if isinstance(d, str)] if isinstance(allowed, list) else []
