"""A caller number's health: what became of the outbound calls made from it lately.

Carriers label a number that calls many people who do not answer, or hang up at once, as
"spam", and its answer rate falls further. Each outbound call's end counts for the number it
was made from (``calls/outbound/number_health.py``): of its calls in the operator's window
(``[number_health] window_hours``), how many were answered, answered and over within
``short_call_seconds``, answered by a machine (``end_reason`` ``voicemail``). The snapshot is
stored with the number (``PhoneNumber.health``) as of its last call's end.
"""

from __future__ import annotations

from datetime import datetime

import msgspec


class NumberOutcomes(msgspec.Struct, frozen=True, kw_only=True):
    """The outbound calls made from a number since a moment: placed and ended (test calls
    apart), answered, answered and short, answered by a machine."""

    calls: int = 0
    answered: int = 0
    short_calls: int = 0
    voicemails: int = 0

    def answer_rate(self) -> float | None:
        """Answered of placed, 0-1; ``None`` without calls."""
        return None if self.calls == 0 else self.answered / self.calls

    def short_call_rate(self) -> float | None:
        """Short of answered, 0-1; ``None`` without answered calls."""
        return None if self.answered == 0 else self.short_calls / self.answered

    def voicemail_rate(self) -> float | None:
        """Answered by a machine of answered, 0-1; ``None`` without answered calls."""
        return None if self.answered == 0 else self.voicemails / self.answered


class NumberHealth(msgspec.Struct, frozen=True, kw_only=True):
    """A number's outcomes over ``window_hours`` up to ``as_of`` (counted from ``since`` at
    the earliest: the end of a rest, or a reset)."""

    window_hours: int
    as_of: datetime
    outcomes: NumberOutcomes
    # What the outcomes say (``verdict``); None: too few calls to tell.
    healthy: bool | None = None


def verdict(outcomes: NumberOutcomes, min_calls: int, answer_rate_floor: float) -> bool | None:
    """Whether ``outcomes`` keep a number healthy: unhealthy when answered less than the floor
    over at least ``min_calls`` calls; ``None`` (no verdict) with fewer calls."""
    rate = outcomes.answer_rate()
    if rate is None or outcomes.calls < min_calls:
        return None
    return rate >= answer_rate_floor


__all__ = ["NumberHealth", "NumberOutcomes", "verdict"]
