"""Who starts a reply of an LLM plan: the entry asked first, or the next model, asked too when
the first is slow to start (a hedge). Whichever gives its first token (or tool call) first
serves the reply.

The entry asked first holds the turn. When it gives nothing for ``takeover_s`` and a model
after it may be asked (its breaker lets a request go; a policy that ends the call is never
asked for speed, only once the models before it failed), that model is asked the same
context. The first of the two to answer serves:

* the holder: the hedge's request is closed, its attempt abandoned; no switch is reported
  (the turn never left the holder);
* the hedge: the holder was outrun, and the turn moves on from it (a switch, reason ``slow``).
  Its request is not closed yet: the plan's supervisor reads on until it shows whether it
  works, then closes it. Its first token: a slow model, not a failing one (its attempt
  abandoned). An error, or no first token within ``first_token_timeout_s``: a failure, as
  of any entry, so a model that hangs still opens its breaker.

An entry that fails (an error, or no first token within ``first_token_timeout_s``) is counted
at once. The holder failing leaves the turn to the hedge, or at once to the next entry when
none runs; a hedge failing leaves the holder alone, and the next model is asked in its place.
Each move of the turn is reported when it happens (``Plan.moved``); a hedge that failed never
held the turn, so its failure is reported on the path from the holder to whoever takes over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from voicedock.aio import Supervisor
from voicedock.errors import ProviderError
from voicedock.pipeline.fallback_plans.plan import BREAKER_OPEN, Entry, Plan, Try, failure_reason
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.providers.base import Llm, ProviderUnavailableError, next_in_time
from voicedock.pipeline.speaking.llm_stream import MODEL_LATE

SLOW = "slow"  # the reason of the switch from an entry its hedge outran

Item = str | ToolCall
Stream = AsyncIterator[str] | AsyncIterator[Item]
Got = tuple[Item] | None  # the first item (in a 1-tuple); None: the reply ended empty
Path = list[tuple[Entry[Llm], str]]  # entries the turn left, each with why


@dataclass(slots=True)
class Answer:
    """The entry that answered first: its stream, and the item it answered with."""

    tried: Try[Llm]
    stream: Stream
    got: Got

    async def items(self) -> AsyncIterator[Item]:
        """The whole reply, its first item again; the stream is closed when this is."""
        try:
            if self.got is not None:
                yield self.got[0]
                async for item in self.stream:
                    yield item
        finally:
            await _closed(self.stream)


@dataclass(slots=True, eq=False)
class _Asked:
    """One request of the race: its entry, its stream, and the task awaiting the stream's
    first item (None: awaited by the race itself, as nothing can hedge it)."""

    tried: Try[Llm]
    stream: Stream
    first: asyncio.Task[Got | Exception] | None
    at: float  # when it was asked (the loop's clock)


@dataclass(slots=True)
class Hedging:
    """How a plan's reply is started: ``first_token_timeout_s`` for any entry's first item,
    the hedge after ``takeover_s`` (None: none), never to an entry ``ends_call`` names; the
    requests that may outlive the race are the plan's ``supervisor`` (started when first
    needed)."""

    first_token_timeout_s: float
    takeover_s: float | None
    ends_call: Callable[[Llm], bool]
    supervisor: Callable[[], Awaitable[Supervisor]]


async def first_answer(
    plan: Plan[Llm], start: int, ask: Callable[[Llm], Stream], hedging: Hedging
) -> Answer:
    """The first answer of ``plan``'s entries from ``start`` (each asked by ``ask``). Raises
    the last error when every entry failed."""
    return await _Race(plan, ask, hedging).run(start)


@dataclass(slots=True)
class _Race:
    plan: Plan[Llm]
    ask: Callable[[Llm], Stream]
    hedging: Hedging
    asked: list[_Asked] = field(default_factory=list)  # every request, closed at the end
    holder: _Asked | None = None
    hedge: _Asked | None = None
    failed: Path = field(default_factory=list)  # hedges failed since the holder was asked
    cursor: int = 0  # the first entry not asked yet
    may_hedge: bool = True

    async def run(self, start: int) -> Answer:
        self.may_hedge = self.hedging.takeover_s is not None
        kept: list[_Asked] = []  # the answer, and an outrun holder: not closed here
        try:
            tried = self.plan.next_try(start)
            assert tried is not None  # the last entry is always tried
            self.plan.moved(_skipped(tried), tried.entry)
            self.holder = await self._asking(tried)
            while (answered := await self._step()) is None:
                pass
            answer, got = answered
            if answer is not self.holder:
                kept.append(await self._outrun(answer))
            kept.append(answer)
            return Answer(answer.tried, answer.stream, got)
        finally:
            await _close([asked for asked in self.asked if asked not in kept])

    async def _step(self) -> tuple[_Asked, Got] | None:
        """What happens next: an entry answers (returned), one fails (the turn moves on as it
        should), or the holder's silence asks for a hedge."""
        holder = self.holder
        assert holder is not None
        if holder.first is None:
            timeout_s = self.hedging.first_token_timeout_s
            results = [(holder, await _first_item(holder.stream, timeout_s))]
        else:
            racing = {
                asked.first: asked
                for asked in (holder, self.hedge)
                if asked is not None and asked.first is not None
            }
            done, _ = await asyncio.wait(
                racing, timeout=self._until_hedge(holder), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                await self._hedge_now()
                return None
            if any(task.cancelled() for task in done):
                raise _closing()
            results = [(asked, task.result()) for task, asked in racing.items() if task in done]
        for asked, outcome in results:  # the holder first: it wins a tie
            if not isinstance(outcome, Exception):
                return asked, outcome
            if not isinstance(outcome, ProviderError):
                raise outcome  # not a provider's failure: the caller's to see
            await self._failed(asked, outcome)
        return None

    def _until_hedge(self, holder: _Asked) -> float | None:
        takeover_s = self.hedging.takeover_s
        if not self.may_hedge or self.hedge is not None or takeover_s is None:
            return None
        return max(0.0, holder.at + takeover_s - asyncio.get_running_loop().time())

    async def _hedge_now(self) -> None:
        tried = self.plan.next_try(self.cursor, stopping_at=self.hedging.ends_call)
        if tried is None:
            self.may_hedge = False  # no model is left before the end or a closing policy
            return
        self.hedge = await self._asking(tried, hedge=True)

    async def _failed(self, asked: _Asked, exc: ProviderError) -> None:
        asked.tried.attempt.failed()
        reason = failure_reason(exc)
        if asked is self.hedge:
            self.hedge = None
            self.failed += [*_skipped(asked.tried), (asked.tried.entry, reason)]
            return
        path: Path = [(asked.tried.entry, reason), *self.failed]
        self.failed = []
        if (hedge := self.hedge) is not None:
            self.plan.moved([*path, *_skipped(hedge.tried)], hedge.tried.entry)
            self.holder, self.hedge = hedge, None
            return
        tried = self.plan.next_try(self.cursor)
        if tried is None:
            self.plan.moved(path, None)
            raise exc
        self.plan.moved([*path, *_skipped(tried)], tried.entry)
        self.holder = await self._asking(tried)

    async def _outrun(self, hedge: _Asked) -> _Asked:
        """``hedge`` answered first: the holder it outran goes on in the plan's supervisor
        until it shows whether it works (closed here if the plan is closing)."""
        holder = self.holder
        assert holder is not None
        assert holder.first is not None
        self.plan.moved(
            [(holder.tried.entry, SLOW), *self.failed, *_skipped(hedge.tried)], hedge.tried.entry
        )
        supervisor = await self.hedging.supervisor()
        if supervisor.spawn(_read_on(holder), name="outrun model") is None:
            await _close([holder])
        return holder

    async def _asking(self, tried: Try[Llm], *, hedge: bool = False) -> _Asked:
        """Ask ``tried``'s entry; its first item is awaited in a task of the plan's supervisor
        when a hedge may race it (it is one, or the entry after it is a model)."""
        self.cursor = tried.index + 1
        loop = asyncio.get_running_loop()
        asked = _Asked(tried, self.ask(tried.entry.provider), None, loop.time())
        self.asked.append(asked)
        if hedge or self._hedgeable(tried):
            supervisor = await self.hedging.supervisor()
            first = _first_item(asked.stream, self.hedging.first_token_timeout_s)
            asked.first = supervisor.spawn_value(first, _closing(), name="model's first token")
            if asked.first is None:
                raise _closing()
        return asked

    def _hedgeable(self, tried: Try[Llm]) -> bool:
        """Whether a hedge may race ``tried``: a model comes after it (whether a breaker lets
        a request go is seen when a hedge is asked)."""
        following = tried.next
        return (
            self.may_hedge
            and following is not None
            and not self.hedging.ends_call(following.provider)
        )


def _closing() -> ProviderError:
    return ProviderUnavailableError("the call's language model was closed")


def _skipped(tried: Try[Llm]) -> Path:
    return [(entry, BREAKER_OPEN) for entry in tried.passed]


async def _first_item(stream: Stream, timeout_s: float) -> Got | Exception:
    """The first item of ``stream`` within ``timeout_s``, or the error that stopped it."""
    try:
        return await next_in_time(stream, timeout_s, MODEL_LATE)
    except Exception as exc:  # noqa: BLE001 - the race decides what a failure means
        return exc


async def _read_on(outrun: _Asked) -> None:
    """An outrun entry's request, read until it shows whether it works, then closed."""
    assert outrun.first is not None
    try:
        await asyncio.wait([outrun.first])
    finally:
        await _close([outrun])


async def _close(requests: list[_Asked]) -> None:
    """Each request stopped (its first item no longer awaited), its attempt settled (failed
    when it failed, else abandoned: it did not serve) and its stream closed."""
    waiting = [r.first for r in requests if r.first is not None and not r.first.done()]
    for task in waiting:
        task.cancel()
    if waiting:
        await asyncio.wait(waiting)
    for request in requests:
        first = request.first
        if (
            first is not None
            and not first.cancelled()
            and isinstance(first.result(), ProviderError)
        ):
            request.tried.attempt.failed()
        request.tried.attempt.abandoned()  # a no-op once settled
        await _closed(request.stream)


async def _closed(stream: Stream) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
