"""An assistant's language model with its fallback plan: the next entry takes over a reply
whose model failed, within the turn.

The entries are tried in order, skipping those whose breaker is open (``provider_health.py``;
the last entry goes anyway when every other was skipped). A model fails a reply when it raises
a provider error (a refused connection, a 5xx, a 429, a malformed answer), gives no first token
within ``first_token_timeout_s`` or stops for ``stall_timeout_s`` midway. Then:

* nothing of the reply was spoken yet: the next entry answers the same context (the caller
  heard at most a filler);
* some sentences were: they stay said, the half sentence the failed model was streaming is
  dropped (only whole sentences are ever spoken), and the next entry is asked to go on from the
  last whole sentence (the context, the part said as the assistant's message, and a note to
  continue without repeating it); sentences it repeats anyway are skipped.

Tool calls of a reply are held until that reply is whole: the calls of a model that failed
midway are never carried out. Each move to the next entry is reported (``on_switch``) and
counted on the endpoint it left. When every entry failed, the last error is raised: the
dialogue then takes the call's ending path (its fallback message, ``provider-error``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from voicedock.domain.json import JsonObject
from voicedock.errors import ProviderError
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.llm_stream import reply_sentences
from voicedock.pipeline.provider_health import Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import (
    Llm,
    ProviderConnectionError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderTimeoutError,
    ToolCallingLlm,
)
from voicedock.pipeline.tools import ToolSpec

CONTINUE_NOTE = (
    "Your reply above was cut off by a technical fault after its last sentence. Continue it "
    "from there; do not repeat anything already said."
)
BREAKER_OPEN = "breaker-open"
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class LlmEntry:
    endpoint: Endpoint
    llm: Llm


@dataclass(frozen=True, slots=True)
class Switch:
    """A reply moved on from one entry of a plan to the next (``to`` None: none was left)."""

    kind: str
    source: Endpoint
    to: Endpoint | None
    reason: str


def switch_event(switch: Switch) -> JsonObject:
    """A ``provider-switch`` call event's data (``docs/webhooks.md``)."""
    return {
        "engine": switch.kind,
        "from": switch.source.label(),
        "to": switch.to.label() if switch.to else None,
        "reason": switch.reason,
    }


def failure_reason(exc: ProviderError) -> str:
    """Why a provider failed, in a word (a ``provider-switch`` event's ``reason``)."""
    match exc:
        case ProviderTimeoutError():
            return "timeout"
        case ProviderRateLimitError():
            return "rate-limited"
        case ProviderConnectionError():
            return "connection"
        case ProviderResponseError():
            return "bad-response"
    return "error"


class LlmPlan:
    def __init__(self, entries: Sequence[LlmEntry], health: ProviderHealth) -> None:
        """``health``: the node's breakers (shared by every call's plans)."""
        if not entries:
            raise ValueError("a plan has one entry at least")
        self.entries = tuple(entries)
        self._health = health

    @classmethod
    def alone(cls, llm: Llm) -> LlmPlan:
        """A model with no fallback (its failures are the call's)."""
        return cls([LlmEntry(Endpoint("llm", type(llm).__name__), llm)], ProviderHealth())

    @property
    def calls_tools(self) -> bool:
        """Whether the plan's first model takes tools (an entry that does not is asked
        without them)."""
        return isinstance(self.entries[0].llm, ToolCallingLlm)

    async def sentences(
        self,
        context: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        first_token_timeout_s: float,
        stall_timeout_s: float | None,
        on_first_token: Callable[[], None] | None = None,
        on_switch: Callable[[Switch], None] | None = None,
    ) -> AsyncIterator[str | ToolCall]:
        """The reply to ``context``: its whole sentences as they come, then its tool calls;
        ``on_switch`` hears of each move to the next entry."""
        said: list[str] = []
        error: ProviderError | None = None
        entries = self.entries
        first_token = _once(on_first_token)
        for index, entry in enumerate(entries):
            last = index == len(entries) - 1
            attempt = self._health.attempt(entry.endpoint, last_resort=last)
            if attempt is None:
                self._switch(entry, entries[index + 1], BREAKER_OPEN, on_switch)
                continue
            calls: list[ToolCall] = []
            repeats = set(map(_normalized, said))
            try:
                async for item in reply_sentences(
                    _ask(entry.llm, _continuing(context, said), tools),
                    first_token_timeout_s=first_token_timeout_s,
                    stall_timeout_s=stall_timeout_s,
                    on_first_token=first_token,
                ):
                    if isinstance(item, ToolCall):
                        calls.append(item)
                        continue
                    if repeats and _normalized(item) in repeats:
                        continue  # a fallback saying again what was said
                    repeats.clear()
                    said.append(item)
                    yield item
            except ProviderError as exc:
                attempt.failed()
                error = exc
                to = None if last else entries[index + 1]
                self._switch(entry, to, failure_reason(exc), on_switch)
                continue
            except BaseException:
                attempt.abandoned()
                raise
            attempt.succeeded()
            for call in calls:
                yield call
            return
        assert error is not None  # the last entry is always tried
        raise error

    def _switch(
        self,
        entry: LlmEntry,
        to: LlmEntry | None,
        reason: str,
        on_switch: Callable[[Switch], None] | None,
    ) -> None:
        self._health.switched(entry.endpoint)
        if on_switch is not None:
            on_switch(Switch("llm", entry.endpoint, to.endpoint if to else None, reason))

    async def aclose(self) -> None:
        for entry in self.entries:
            await entry.llm.aclose()


def _ask(
    llm: Llm, context: Sequence[ChatMessage], tools: Sequence[ToolSpec]
) -> AsyncIterator[str] | AsyncIterator[str | ToolCall]:
    if tools and isinstance(llm, ToolCallingLlm):
        return llm.stream_with_tools(context, tools)
    return llm.stream(context)


def _continuing(context: Sequence[ChatMessage], said: list[str]) -> Sequence[ChatMessage]:
    if not said:
        return context
    return [
        *context,
        ChatMessage("assistant", " ".join(said)),
        ChatMessage("system", CONTINUE_NOTE),
    ]


def _normalized(sentence: str) -> str:
    return " ".join(_WORDS.findall(sentence.lower()))


def _once(callback: Callable[[], None] | None) -> Callable[[], None] | None:
    """``callback`` on its first call only (the reply's first token, whichever entry's)."""
    if callback is None:
        return None
    pending = [callback]

    def first() -> None:
        if pending:
            pending.pop()()

    return first
