"""Capped exponential backoff with jitter (pure, no sleeping here).

``exponential`` is the one growth rule: ``first · factor^attempt``, never above ``cap`` and
never overflowing, whatever the attempt count. Its users keep their own numbers and jitter:

* ``Backoff``: the PBX reconnect delay (AMI, ARI: 0.2 s doubling up to 10 s; ESL: its
  settings' ``reconnect_backoff``, 0.5 s doubling up to 30 s), up to half of each delay
  randomised away. Jitter spreads the reconnects of several voicedock nodes after a PBX restart
  so they do not all hit the PBX in the same millisecond; keeping at least half of each step
  bounds the wait once the PBX is back to about twice the outage (a delay drawn uniformly from
  the first step up would let a run of quick failures reach a long step early).
* the webhook retry schedule (``webhooks/retry.py`` ``RetryPolicy``): 5 s growing fourfold up
  to 12 h, each delay ±20 %.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def exponential(attempt: int, *, first: float, factor: float, cap: float) -> float:
    """``first · factor^attempt`` (``first`` for attempt 0), at most ``cap``."""
    try:
        return min(cap, first * factor ** max(0, attempt))
    except OverflowError:  # a huge attempt count: long past the cap
        return cap


@dataclass(slots=True)
class Backoff:
    """A reconnect's delays: ``next_delay`` before each attempt, ``reset`` once connected."""

    initial: float = 0.2
    cap: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5  # the fraction of each delay that is randomised away
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until ``cap``."""
        base = exponential(self._attempt, first=self.initial, factor=self.factor, cap=self.cap)
        if base < self.cap:
            self._attempt += 1
        return base * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Call after a successful connect."""
        self._attempt = 0
