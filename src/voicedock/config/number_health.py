"""``[number_health]``: how the caller numbers' health is judged and what the pool does with it
(docs/api.md, Phone numbers' health). Every outbound call's end updates its number's outcomes
over ``window_hours``; a number answered less than ``answer_rate_floor`` over at least
``min_calls`` calls is flagged (the ``phone-number-health`` webhook) and, with ``rest_hours``,
rested: no call is made from it until then."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from voicedock.config.table_types import Table


class NumberHealthSettings(Table):
    window_hours: Annotated[int, Meta(ge=1, le=720)] = 24
    # Fewer calls in the window: no verdict (a new number is not flagged by its first misses).
    min_calls: Annotated[int, Meta(ge=1, le=100_000)] = 10
    answer_rate_floor: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.2  # 0: never flagged
    # An answered call over within this is short (the callee hung up at once).
    short_call_seconds: Annotated[int, Meta(ge=1, le=600)] = 10
    # How long a flagged number rests (no call made from it unless named by number_id); 0:
    # it stays in the pool, after the healthy ones.
    rest_hours: Annotated[int, Meta(ge=0, le=720)] = 0
    # The pool's order: healthy numbers before flagged ones; then, with prefer_local, those
    # sharing the callee's country and area code (local presence); then the least recently used.
    prefer_healthy: bool = True
    prefer_local: bool = False
