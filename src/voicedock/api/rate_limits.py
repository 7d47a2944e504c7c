"""API rate limits: requests per second and outbound calls per second, per API key and per
organization, as token buckets of this node (docs/campaigns.md, ``[rate_limits]``).

A request over a limit is answered 429 with ``Retry-After`` and the documented error body
before its handler runs: it is never processed. While a request limit is set, every
authenticated response tells the caller its budget: ``RateLimit-Limit`` (requests per second
of the tightest bucket), ``RateLimit-Remaining`` (requests it may send now) and
``RateLimit-Reset`` (seconds until the bucket is full again). A bucket holds one second's
worth: a burst of up to the rate passes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from voicedock.api.app_keys import API_KEY, ORGANIZATION_ID, PUBLIC_PATHS
from voicedock.config import RateLimitSettings
from voicedock.errors import RateLimited

# Requests that place a call: they spend the calls-per-second budgets too.
CALL_PATHS = frozenset({("POST", "/calls/outbound")})


@dataclass(slots=True)
class Bucket:
    """``rate`` tokens per second, at most ``rate`` held; one token per request."""

    rate: float
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait(self) -> float:
        """Seconds until one token is there (0: now)."""
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def reset(self) -> float:
        return (self.rate - self.tokens) / self.rate


class RateLimiter:
    """Every bucket of this node, by (kind, key id or organization id)."""

    def __init__(
        self, settings: RateLimitSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._now = clock
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def _bucket(self, kind: str, owner: str, rate: int, now: float) -> Bucket | None:
        if rate <= 0:
            return None
        bucket = self._buckets.get((kind, owner))
        if bucket is None:
            if len(self._buckets) > 100_000:  # keys come and go: forget the full ones
                self._buckets = {k: b for k, b in self._buckets.items() if b.tokens < b.rate}
            bucket = self._buckets[(kind, owner)] = Bucket(float(rate), float(rate), now)
        bucket.refill(now)
        return bucket

    def take(self, key_id: str, organization_id: str, places_call: bool) -> list[Bucket]:
        """Spend one token of each bucket that applies, or none when one is empty
        (``RateLimited`` with the wait). The request buckets, for the budget headers."""
        s, now = self._settings, self._now()
        requests = [
            self._bucket("key", key_id, s.requests_per_second, now),
            self._bucket("org", organization_id, s.organization_requests_per_second, now),
        ]
        calls = [
            self._bucket("key-calls", key_id, s.calls_per_second, now),
            self._bucket("org-calls", organization_id, s.organization_calls_per_second, now),
        ]
        buckets = [b for b in requests + (calls if places_call else []) if b is not None]
        wait = max((b.wait() for b in buckets), default=0.0)
        if wait > 0:
            raise RateLimited(
                "too many requests for this API key or organization; retry after the time in "
                "Retry-After",
                retry_after_seconds=math.ceil(wait),
            )
        for bucket in buckets:
            bucket.tokens -= 1
        return [b for b in requests if b is not None]


def budget_headers(buckets: list[Bucket]) -> dict[str, str]:
    if not buckets:
        return {}
    tightest = min(buckets, key=lambda b: b.tokens / b.rate)
    return {
        "RateLimit-Limit": str(int(tightest.rate)),
        "RateLimit-Remaining": str(max(0, math.floor(tightest.tokens))),
        "RateLimit-Reset": str(math.ceil(tightest.reset())),
    }


LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter", RateLimiter)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    """After ``authenticate``: the request's key and organization are known."""
    if request.path in PUBLIC_PATHS or API_KEY not in request:
        return await handler(request)
    limiter = request.app[LIMITER]
    places_call = (request.method, request.path) in CALL_PATHS
    buckets = limiter.take(request[API_KEY].id, request[ORGANIZATION_ID], places_call)
    response = await handler(request)
    response.headers.update(budget_headers(buckets))
    return response


__all__ = ["LIMITER", "RateLimiter", "budget_headers", "rate_limit"]
