"""An assistant's language model with its fallback plan: the next entry takes over a reply
whose model failed or is slow to start, within the turn.

A reply starts with its first entry; when that gives no first token within ``takeover_s`` and
a model comes after it, that model is asked too, and the first to answer serves the reply
(``hedge.py``: a slow model keeps the turns it answers first, and is never counted as
failing). A model fails a reply when it raises a provider error (a refused connection, a 5xx,
a 429, a malformed answer), gives no first token within ``first_token_timeout_s`` or, once it
has started and when a next entry could take over, is silent for ``takeover_s`` (the last
entry, or a model alone, may be slow: a slow reply beats none). Then:

* nothing of the reply was spoken yet: the next entry answers the same context (the caller
  heard at most a filler);
* some sentences were: they stay said, the half sentence the failed model was streaming is
  dropped (only whole sentences are ever spoken), and the next entry is asked to go on from the
  last whole sentence (the context, the part said as the assistant's message, and a note to
  continue without repeating it); sentences it repeats anyway are skipped.

Midway, silence is a failure after the same ``takeover_s``, not after longer: a working model's
gaps between tokens are a fraction of its time to the first one, so a gap that long is a
stall, and what it costs the caller (the silence, then the next entry's first words) is not
covered by what was already said. Tool calls of a reply are held until that reply is whole:
the calls of a model that failed midway, or lost the race to its first token, are never
carried out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from functools import cached_property, partial

from voicedock.aio import Supervisor
from voicedock.errors import ProviderError
from voicedock.pipeline.fallback_plans.hedge import Hedging, first_answer
from voicedock.pipeline.fallback_plans.plan import Entry, Plan
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.pools.provider_health import Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import (
    ClosingLlm,
    Llm,
    ProviderUnavailableError,
    ToolCallingLlm,
    first_in_time,
)
from voicedock.pipeline.speaking.llm_stream import MODEL_LATE, reply_sentences
from voicedock.pipeline.tools import ToolSpec

CONTINUE_NOTE = (
    "Your reply above was cut off by a technical fault after its last sentence. Continue it "
    "from there; do not repeat anything already said."
)
_WORDS = re.compile(r"\w+")

log = logging.getLogger("voicedock.pipeline")


class LlmPlan(Plan[Llm]):
    kind = "llm"

    @cached_property
    def _tasks(self) -> Supervisor:
        """A reply's first tokens awaited while a hedge may race them, and the requests of the
        models it outran, read on until they show whether they work (``hedge.py``)."""
        return Supervisor("llm plan", log)

    @classmethod
    def alone(cls, llm: Llm, endpoint: Endpoint | None = None) -> LlmPlan:
        """A model with no fallback (its failures are the call's), at ``endpoint`` (None: one
        named after its class) and outside the node's breakers."""
        endpoint = endpoint or Endpoint("llm", type(llm).__name__)
        return cls([Entry(endpoint, llm)], ProviderHealth())

    @property
    def calls_tools(self) -> bool:
        """Whether the plan's first model takes tools (an entry that does not is asked
        without them)."""
        return isinstance(self.primary, ToolCallingLlm)

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        """An ``Llm``'s stream (the call's analysis, a warm transfer's briefing): the next
        entry answers when one fails before its first token, which an entry with a next one
        must give within ``attempt_timeout_s`` (a server that never answers fails, rather than
        use up the caller's own deadline); a failure after it is the caller's (its text would
        be doubled). A policy that only ends the call is not asked."""
        error: ProviderError | None = None
        try:
            for tried in self.tries(passing_over=_ends_call):
                started = False
                deadline = self._attempt_timeout_s if tried.next is not None else None
                tokens = tried.entry.provider.stream(messages)
                try:
                    with self.serving(tried):
                        async for token in first_in_time(tokens, deadline, MODEL_LATE):
                            started = True
                            yield token
                        return
                except ProviderError as exc:
                    if started:
                        raise
                    error = exc
            raise error or ProviderUnavailableError("no entry of the plan answers questions")
        finally:
            del error  # a failure's traceback holds this frame: the frame must not hold it

    async def sentences(
        self,
        context: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        *,
        first_token_timeout_s: float,
        takeover_s: float | None,
        on_first_token: Callable[[], None] | None = None,
    ) -> AsyncIterator[str | ToolCall]:
        """The reply to ``context``: its whole sentences as they come, then its tool calls.
        ``takeover_s`` None: no entry is asked before the one before it failed, and an entry
        is silent as long as it likes (its first token within ``first_token_timeout_s``)."""
        said: list[str] = []
        first_token = _once(on_first_token)
        hedging = Hedging(first_token_timeout_s, takeover_s, _ends_call, self._supervisor)
        start = 0
        while True:
            ask = partial(_ask, context=_continuing(context, said), tools=tools)
            answer = await first_answer(self, start, ask, hedging)
            tried, calls = answer.tried, list[ToolCall]()
            repeats = set(map(_normalized, said))
            try:
                with self.serving(tried):
                    # Only where an entry can take over: a slow stream beats none.
                    silence = takeover_s if tried.next is not None else None
                    async for item in reply_sentences(
                        answer.items(), stall_timeout_s=silence, on_first_token=first_token
                    ):
                        if isinstance(item, ToolCall):
                            calls.append(item)
                            continue
                        if repeats and _normalized(item) in repeats:
                            continue  # a fallback saying again what was said
                        repeats.clear()
                        said.append(item)
                        yield item
            except ProviderError:
                if tried.next is None:
                    raise
                start = tried.index + 1
                continue
            for call in calls:
                yield call
            return

    async def aclose(self) -> None:
        await self._tasks.aclose()
        await super().aclose()

    async def _supervisor(self) -> Supervisor:
        if not self._tasks.running:
            await self._tasks.start()
        return self._tasks


def _ends_call(llm: Llm) -> bool:
    return isinstance(llm, ClosingLlm)


def _ask(
    llm: Llm, context: Sequence[ChatMessage], tools: Sequence[ToolSpec]
) -> AsyncIterator[str] | AsyncIterator[str | ToolCall]:
    # A policy that ends the call itself is asked as if tools were offered.
    if isinstance(llm, ToolCallingLlm) and (tools or isinstance(llm, ClosingLlm)):
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
