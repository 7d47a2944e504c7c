from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from voicedock.webhooks.retry import RetryPolicy, parse_retry_after

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def test_backoff_grows_exponentially_within_jitter() -> None:
    rng = random.Random(1)
    delays = [POLICY.backoff(n, rng).total_seconds() for n in range(1, 7)]
    for attempt, delay in enumerate(delays, start=1):
        expected = 5 * 4 ** (attempt - 1)
        assert expected * 0.8 <= delay <= expected * 1.2
    assert delays == sorted(delays)


def test_backoff_is_capped_even_for_huge_attempt_counts() -> None:
    rng = random.Random(2)
    for attempts in (20, 100, 10_000):
        assert POLICY.backoff(attempts, rng) <= timedelta(hours=12)
        assert POLICY.backoff(attempts, rng) >= timedelta(hours=12) * 0.8


def test_jitter_spreads_retries_of_simultaneous_failures() -> None:
    rng = random.Random(3)
    delays = {POLICY.backoff(3, rng) for _ in range(20)}
    assert len(delays) > 10


def test_retries_span_three_days_then_stop() -> None:
    rng = random.Random(4)
    now, attempts = NOW, 1
    while (
        next_at := POLICY.next_attempt(attempts=attempts, enqueued_at=NOW, now=now, rng=rng)
    ) is not None:
        assert next_at > now
        now, attempts = next_at, attempts + 1
        assert attempts < 50
    assert now == NOW + timedelta(days=3)  # the last attempt is made at the deadline
    assert attempts > 8


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    rng = random.Random(5)
    late = POLICY.next_attempt(
        attempts=1, enqueued_at=NOW, now=NOW, rng=rng, retry_after=timedelta(minutes=7)
    )
    assert late == NOW + timedelta(minutes=7)
    capped = POLICY.next_attempt(
        attempts=1, enqueued_at=NOW, now=NOW, rng=rng, retry_after=timedelta(days=30)
    )
    assert capped == NOW + timedelta(days=1)


def test_retry_after_cannot_extend_past_the_deadline() -> None:
    rng = random.Random(6)
    now = NOW + timedelta(days=2, hours=23)
    next_at = POLICY.next_attempt(
        attempts=9, enqueued_at=NOW, now=now, rng=rng, retry_after=timedelta(hours=5)
    )
    assert next_at == NOW + timedelta(days=3)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 0 ", timedelta(0)),
        ("Sun, 01 Mar 2026 10:02:00 GMT", timedelta(minutes=2)),
        ("Sun, 01 Mar 2026 09:00:00 GMT", timedelta(0)),
        ("99999999999999", timedelta(seconds=10**9)),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(value, NOW) == expected
