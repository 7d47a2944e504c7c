"""A node's view of its speech providers' health: one circuit breaker per endpoint, shared by
every call of the node.

An endpoint (the kind of engine, its provider, its URL and model: ``Endpoint``) that fails
``failures_to_open`` times in a row opens: for ``cool_down_s`` no call's new request goes to it
(each goes straight to the next entry of its fallback plan, ``pipeline/fallback_plans/``).
Then one request at a time probes it (half-open): a success closes it, a failure opens it for
another cool-down. A request abandoned midway (a barge-in, the call's end, a working model's
request that another entry of its plan answered first) counts neither way.

So when a provider fails, the calls of the node find out together: each sends it at most the
requests already on their way when it opened, then only the probes reach it. The counts per
endpoint (requests, failures, switches away from it, times opened) are read by ``/metrics``,
each breaker's state by ``/health``.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

FAILURES_TO_OPEN = 3
COOL_DOWN_S = 30.0
MAX_ENDPOINTS = 1024


class BreakerState(enum.StrEnum):
    CLOSED = "closed"  # requests go to it
    OPEN = "open"  # cooling down: requests skip it
    HALF_OPEN = "half-open"  # one probe at a time


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What one fallback entry talks to. ``base_url`` "" is the provider's own endpoint."""

    kind: str  # "llm", "stt", "tts", "realtime"
    provider: str
    base_url: str = ""
    model: str = ""

    def label(self) -> str:
        """For metrics and logs: the URL's host and port only (never its path or userinfo)."""
        where = ""
        if self.base_url:
            parts = urlsplit(self.base_url)
            where = parts.hostname or ""
            if parts.port is not None:
                where = f"{where}:{parts.port}"
        return "/".join(part for part in (self.provider, where, self.model) if part)


@dataclass(slots=True)
class EndpointCounts:
    requests: int = 0
    failures: int = 0
    switches: int = 0  # requests that moved on from it to the next entry
    opened: int = 0  # times its breaker opened


@dataclass(slots=True)
class _Breaker:
    counts: EndpointCounts = field(default_factory=EndpointCounts)
    failed_in_a_row: int = 0
    open_until: float | None = None  # set while open or half-open
    probing: bool = False


class Attempt:
    """One request to an endpoint, settled once: ``succeeded``, ``failed`` or ``abandoned``
    (later settles are ignored)."""

    def __init__(self, health: ProviderHealth, endpoint: Endpoint, *, probe: bool) -> None:
        self.endpoint = endpoint
        self._health, self._probe, self._settled = health, probe, False

    def succeeded(self) -> None:
        self._settle(ok=True)

    def failed(self) -> None:
        self._settle(ok=False)

    def abandoned(self) -> None:
        self._settle(ok=None)

    def _settle(self, *, ok: bool | None) -> None:
        if not self._settled:
            self._settled = True
            self._health._settled(self.endpoint, ok=ok, probe=self._probe)


class ProviderHealth:
    def __init__(
        self,
        *,
        failures_to_open: int = FAILURES_TO_OPEN,
        cool_down_s: float = COOL_DOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures_to_open, self._cool_down_s, self._clock = (
            failures_to_open,
            cool_down_s,
            clock,
        )
        self._breakers: OrderedDict[Endpoint, _Breaker] = OrderedDict()  # least recent first
        self._totals: dict[tuple[str, str], EndpointCounts] = {}

    def attempt(self, endpoint: Endpoint, *, last_resort: bool = False) -> Attempt | None:
        """A request to ``endpoint`` may go now (settle the ``Attempt``), or None: its breaker
        is open, or half-open with its probe out. ``last_resort`` (the plan's last entry,
        every other one refused) goes anyway."""
        breaker = self._breaker(endpoint)
        probe = False
        if breaker.open_until is not None:
            if self._clock() >= breaker.open_until and not breaker.probing:
                breaker.probing = probe = True
            elif not last_resort:
                return None
        breaker.counts.requests += 1
        self._total(endpoint).requests += 1
        return Attempt(self, endpoint, probe=probe)

    def switched(self, endpoint: Endpoint) -> None:
        """A request moved on from ``endpoint`` to the plan's next entry."""
        self._breaker(endpoint).counts.switches += 1
        self._total(endpoint).switches += 1

    def state(self, endpoint: Endpoint) -> BreakerState:
        breaker = self._breakers.get(endpoint)
        if breaker is None or breaker.open_until is None:
            return BreakerState.CLOSED
        if breaker.probing or self._clock() >= breaker.open_until:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def totals(self) -> dict[tuple[str, str], EndpointCounts]:
        """The counts of every endpoint so far, per engine and provider (copies)."""
        return {key: replace(counts) for key, counts in self._totals.items()}

    def open_now(self) -> dict[tuple[str, str], int]:
        """Breakers open or half-open now, per engine and provider."""
        opened: dict[tuple[str, str], int] = {}
        for endpoint in self._breakers:
            if self.state(endpoint) is not BreakerState.CLOSED:
                key = (endpoint.kind, endpoint.provider)
                opened[key] = opened.get(key, 0) + 1
        return opened

    def breakers(self) -> list[tuple[Endpoint, BreakerState]]:
        """Every endpoint this node has sent a request to (the most recent last), with its
        breaker's state now."""
        return [(endpoint, self.state(endpoint)) for endpoint in self._breakers]

    def counts(self) -> dict[Endpoint, EndpointCounts]:
        """Every endpoint this node has sent a request to, with its counts (copies)."""
        return {endpoint: replace(b.counts) for endpoint, b in self._breakers.items()}

    def _breaker(self, endpoint: Endpoint) -> _Breaker:
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            if len(self._breakers) >= MAX_ENDPOINTS:
                self._forget_one()
            breaker = self._breakers[endpoint] = _Breaker()
        self._breakers.move_to_end(endpoint)
        return breaker

    def _forget_one(self) -> None:
        for endpoint, breaker in self._breakers.items():
            if breaker.open_until is None:
                del self._breakers[endpoint]
                return
        self._breakers.popitem(last=False)

    def _total(self, endpoint: Endpoint) -> EndpointCounts:
        return self._totals.setdefault((endpoint.kind, endpoint.provider), EndpointCounts())

    def _settled(self, endpoint: Endpoint, *, ok: bool | None, probe: bool) -> None:
        breaker = self._breakers.get(endpoint)
        if breaker is None:  # forgotten meanwhile
            return
        if probe:
            breaker.probing = False
        if ok is None:
            return
        if ok:
            breaker.failed_in_a_row, breaker.open_until = 0, None
            return
        breaker.counts.failures += 1
        self._total(endpoint).failures += 1
        breaker.failed_in_a_row += 1
        if probe or (
            breaker.open_until is None and breaker.failed_in_a_row >= self._failures_to_open
        ):
            breaker.open_until = self._clock() + self._cool_down_s
            breaker.counts.opened += 1
            self._total(endpoint).opened += 1
