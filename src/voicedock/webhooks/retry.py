"""When to try a failed delivery again. Pure: the caller passes the clock and the randomness.

The default schedule grows 5 s, 20 s, 80 s, ... up to 12 h between attempts (each ±20 % so
endpoints that failed together are not retried in lock-step) and stops three days after the
event was enqueued, with one last attempt at the deadline. A receiver's ``Retry-After``
(seconds or an HTTP date, on 429 or 503) replaces the computed delay, capped at one day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from voicedock.backoff import exponential


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay: timedelta = timedelta(seconds=5)
    factor: float = 4.0
    max_delay: timedelta = timedelta(hours=12)
    give_up_after: timedelta = timedelta(days=3)
    jitter: float = 0.2
    max_retry_after: timedelta = timedelta(days=1)

    def backoff(self, attempts: int, rng: random.Random) -> timedelta:
        """The delay after the ``attempts``-th failed attempt (1 for the first failure)."""
        cap = self.max_delay.total_seconds()
        first = self.first_delay.total_seconds()
        delay = exponential(attempts - 1, first=first, factor=self.factor, cap=cap)
        spread = rng.uniform(1 - self.jitter, 1 + self.jitter)
        return timedelta(seconds=min(cap, delay * spread))

    def next_attempt(
        self,
        *,
        attempts: int,
        enqueued_at: datetime,
        now: datetime,
        rng: random.Random,
        retry_after: timedelta | None = None,
    ) -> datetime | None:
        """When to try again after ``attempts`` failures, or ``None`` to give up."""
        deadline = enqueued_at + self.give_up_after
        if now >= deadline:
            return None
        if retry_after is not None:
            delay = min(max(retry_after, timedelta(0)), self.max_retry_after)
        else:
            delay = self.backoff(attempts, rng)
        return min(now + delay, deadline)


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as a delay from ``now``: delta-seconds or an HTTP date; else ``None``."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        # Absurdly large values are capped later by RetryPolicy.max_retry_after.
        return timedelta(seconds=int(text) if len(text) <= 9 else 10**9)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment - now, timedelta(0))
