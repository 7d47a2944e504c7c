"""Capped exponential backoff with jitter for PBX reconnects (pure, no sleeping here).

Jitter spreads the reconnects of several voicedock nodes after an Asterisk restart so they do
not all hit the PBX in the same millisecond.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.2
    cap: float = 10.0
    factor: float = 2.0
    jitter: float = 0.5  # the fraction of each delay that is randomised away
    rng: random.Random = field(default_factory=random.Random)
    _attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; grows until ``cap``."""
        base = min(self.cap, self.initial * self.factor**self._attempt)
        if base < self.cap:
            self._attempt += 1
        return base * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Call after a successful connect."""
        self._attempt = 0
