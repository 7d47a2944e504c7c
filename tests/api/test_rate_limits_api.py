"""API rate limits: a burst over a key's budget is answered 429 with Retry-After and the
documented error body, never processed (the PBX sees only the admitted calls); responses carry
the caller's budget."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.conftest import Api, serving
from fakes.world import DESTINATION, SUPPORT_ID, make_settings
from voicedock.api.rate_limits import Bucket, RateLimiter
from voicedock.config import RateLimitSettings
from voicedock.errors import RateLimited

pytestmark = pytest.mark.unit


@pytest.fixture
async def capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Api]:
    # The buckets' clock stands still: a burst answered slowly (a busy machine) gets no refill.
    still = functools.partial(RateLimiter, clock=lambda: 1000.0)
    monkeypatch.setattr("voicedock.api.app.RateLimiter", still)
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    settings.rate_limits = RateLimitSettings(requests_per_second=20, calls_per_second=5)
    for number in settings.numbers:
        number.max_concurrent_calls = 100
    async with serving(settings) as running:
        yield running


async def test_a_burst_of_calls_over_the_key_budget_is_429_and_never_placed(capped: Api) -> None:
    api = capped
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}

    async def place() -> tuple[int, dict[str, str], dict[str, str]]:
        response = await api.client.post("/calls/outbound", json=body, headers=api.auth())
        return response.status, dict(response.headers), await response.json()

    answers = await asyncio.gather(*(place() for _ in range(100)))
    statuses = Counter(status for status, _, _ in answers)
    assert statuses == {200: 5, 429: 95}
    assert len(api.pbx.originated) == 5  # the 429s were never processed
    refused = next(a for a in answers if a[0] == 429)
    assert refused[2]["error"] == "Too many requests"
    assert int(refused[1]["Retry-After"]) >= 1
    placed = next(a for a in answers if a[0] == 200)
    assert placed[1]["RateLimit-Limit"] in ("20", "5")
    # Another key has its own budget; reads are only under the request budget.
    other = await api.client.get("/calls", headers=api.auth(api.globex_key))
    assert other.status == 200
    assert other.headers["RateLimit-Limit"] == "20"
    assert int(other.headers["RateLimit-Remaining"]) == 19


def test_buckets_refill_at_their_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(RateLimitSettings(requests_per_second=2), clock=lambda: now[0])
    limiter.take("k", "o", places_call=False)
    limiter.take("k", "o", places_call=False)
    with pytest.raises(RateLimited) as refused:
        limiter.take("k", "o", places_call=False)
    assert refused.value.headers() == {"Retry-After": "1"}
    now[0] = 0.5  # one token back
    (bucket,) = limiter.take("k", "o", places_call=False)
    assert bucket == Bucket(2.0, 0.0, 0.5)
    limiter.take("other", "o", places_call=False)  # per key
