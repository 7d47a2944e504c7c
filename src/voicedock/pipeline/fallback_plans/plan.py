"""What every fallback plan shares: its entries in order, the node's breakers, the report of
each move to the next entry.

A plan tries its entries in order, skipping those whose breaker is open (the last entry goes
anyway when every other was skipped: a call is never failed by breakers alone). Each move is
counted on the endpoint it left and reported to the call (``on_switch``, a ``Switch``: its
``provider-switch`` event); the entry that served last is ``served`` (``serving.py``). When
every entry failed, the last error is raised: the dialogue then takes the call's ending path
(its fallback message, ``provider-error``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, Self, TypeVar

from voicedock.domain.json import JsonObject
from voicedock.errors import ProviderError
from voicedock.pipeline.pools.provider_health import Attempt, Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import (
    ProviderConnectionError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)

log = logging.getLogger("voicedock.pipeline")

BREAKER_OPEN = "breaker-open"


class _Provider(Protocol):
    async def aclose(self) -> None: ...


P = TypeVar("P", bound=_Provider)


@dataclass(frozen=True, slots=True)
class Entry(Generic[P]):
    endpoint: Endpoint
    provider: P


@dataclass(frozen=True, slots=True)
class Switch:
    """A turn moved on from one entry of a plan to the next (``to`` None: none was left)."""

    kind: str
    source: Endpoint
    to: Endpoint | None
    reason: str

    def event(self) -> JsonObject:
        """The data of the call's ``provider-switch`` event (``docs/webhooks.md``)."""
        return {
            "engine": self.kind,
            "from": self.source.label(),
            "to": self.to.label() if self.to else None,
            "reason": self.reason,
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
        case ProviderServerError():
            return "server-error"
        case ProviderResponseError():
            return "bad-response"
    return "error"


@dataclass(frozen=True, slots=True)
class Try(Generic[P]):
    """One entry's turn to serve: settle ``attempt``; on failure, ``failed`` reports it."""

    entry: Entry[P]
    index: int  # the entry's place in the plan
    attempt: Attempt
    next: Entry[P] | None
    # The entries before it that its breaker check passed over (open), in order.
    passed: tuple[Entry[P], ...] = ()


class Plan(Generic[P]):
    kind: ClassVar[str]  # the engine: "llm", "stt", "tts"
    # How long an entry may take to start answering (its first transcript, audio, or the
    # first token of a model's stream that is not a spoken reply) by default.
    attempt_timeout_s: ClassVar[float] = 5.0

    def __init__(
        self,
        entries: Sequence[Entry[P]],
        health: ProviderHealth,
        on_switch: Callable[[Switch], None] | None = None,
        *,
        attempt_timeout_s: float | None = None,
    ) -> None:
        """``health``: the node's breakers (shared by every call's plans); ``on_switch``
        hears of each move to the next entry."""
        if not entries:
            raise ValueError("a plan has one entry at least")
        self.entries = tuple(entries)
        # The entry that served last (the first until one did): who serves the call now.
        self.served = self.entries[0].endpoint
        self._health, self._on_switch = health, on_switch
        self._attempt_timeout_s = attempt_timeout_s or type(self).attempt_timeout_s

    def mapped(self, wrap: Callable[[P], P]) -> Self:
        """The same plan with each entry's provider wrapped (the node's synthesis or
        recognition pool for a local engine)."""
        entries = [Entry(entry.endpoint, wrap(entry.provider)) for entry in self.entries]
        return type(self)(
            entries, self._health, self._on_switch, attempt_timeout_s=self._attempt_timeout_s
        )

    @property
    def primary(self) -> P:
        return self.entries[0].provider

    def tries(
        self, start: int = 0, *, passing_over: Callable[[P], bool] | None = None
    ) -> Iterator[Try[P]]:
        """The entries whose turn it is, in order from ``start`` (those whose breaker is open
        are skipped and reported; those ``passing_over`` names are not asked at all)."""
        while (tried := self.next_try(start, passing_over=passing_over)) is not None:
            self.moved([(entry, BREAKER_OPEN) for entry in tried.passed], tried.entry)
            yield tried
            start = tried.index + 1

    def next_try(
        self,
        start: int,
        *,
        passing_over: Callable[[P], bool] | None = None,
        stopping_at: Callable[[P], bool] | None = None,
    ) -> Try[P] | None:
        """The first entry from ``start`` whose breaker lets a request go now (its attempt
        taken), with the entries its breaker check skipped (``Try.passed``, not reported:
        ``moved`` does when the turn goes there); None: no entry is left, or the first one
        ``stopping_at`` names comes before one is found (no attempt is taken then)."""
        entries = [
            (index, entry)
            for index, entry in enumerate(self.entries)
            if index >= start and (passing_over is None or not passing_over(entry.provider))
        ]
        passed: list[Entry[P]] = []
        for position, (index, entry) in enumerate(entries):
            if stopping_at is not None and stopping_at(entry.provider):
                return None
            following = entries[position + 1][1] if position + 1 < len(entries) else None
            attempt = self._health.attempt(entry.endpoint, last_resort=following is None)
            if attempt is not None:
                return Try(entry, index, attempt, following, tuple(passed))
            passed.append(entry)
        return None

    @contextlib.contextmanager
    def serving(self, tried: Try[P]) -> Iterator[None]:
        """``tried`` serves the turn within: it succeeded when the block ends, failed when a
        provider error leaves it (counted and reported before the error goes on), neither
        when anything else does (a barge-in, the call's end)."""
        try:
            yield
        except ProviderError as exc:
            tried.attempt.failed()
            self._switch(tried.entry, tried.next, failure_reason(exc))
            raise
        except BaseException:
            tried.attempt.abandoned()
            raise
        tried.attempt.succeeded()
        self.served = tried.entry.endpoint

    async def aclose(self) -> None:
        for entry in self.entries:
            await entry.provider.aclose()

    def moved(self, path: Sequence[tuple[Entry[P], str]], to: Entry[P] | None) -> None:
        """The turn went along ``path`` (each entry it left, and why) to ``to`` (None: no entry
        was left): each move reported, from each entry to the next on the path."""
        followers = [*(entry for entry, _ in path[1:]), to]
        for (entry, reason), following in zip(path, followers, strict=False):
            self._switch(entry, following, reason)

    def _switch(self, entry: Entry[P], to: Entry[P] | None, reason: str) -> None:
        switch = Switch(self.kind, entry.endpoint, to.endpoint if to else None, reason)
        report_switch(switch, self._health, self._on_switch)


def report_switch(
    switch: Switch, health: ProviderHealth, on_switch: Callable[[Switch], None] | None
) -> None:
    """A move to the next entry: counted on the endpoint left, logged, told to the call."""
    health.switched(switch.source)
    log.warning(
        "call: %s moved on from %s to %s (%s)",
        switch.kind,
        switch.source.label(),
        switch.to.label() if switch.to else "nothing",
        switch.reason,
    )
    if on_switch is not None:
        on_switch(switch)
