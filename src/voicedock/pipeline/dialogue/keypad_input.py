"""The caller's keypad on a live dialogue: each key into the entry being collected
(``pipeline/hearing/keypad.py``), the timer of the entry's timeout, and its times on the wall clock.

Both engines take keys the same way: a key barges in like speech, a complete entry is ONE user
turn, ``"Keypad: 1234#"``, that the model answers; an entry still open when the caller's
spoken turn ends ends with it (one turn for both); what was pressed when the call ends is
still recorded. The dialogue says what an entry becomes; this keeps the keys and the clock.
A plan turned off (``enabled`` False): the dialogue ignores every key (``enabled``) before it
barges in or presses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from voicedock.pipeline.frames import TranscriptEntry
from voicedock.pipeline.hearing.keypad import KeypadCollector, KeypadEntry, KeypadPlan


class KeypadInput:
    def __init__(
        self, plan: KeypadPlan, wall: Callable[[], float], on_due: Callable[[float], None]
    ) -> None:
        """``on_due(deadline)`` is called (from the event loop) when the open entry's timeout
        set for ``deadline`` passes; ``expire(deadline)`` then says whether it still holds."""
        self._collector = KeypadCollector(plan)
        self._wall = wall
        self._on_due = on_due
        self._timer: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        """False: the plan is off, the caller's keys are to be ignored altogether."""
        return self._collector.plan.enabled

    def press(self, digit: str) -> KeypadEntry | None:
        """A key pressed now: the entry when it completes one, else the timeout is (re)set."""
        loop = asyncio.get_running_loop()
        keys = self._collector.press(digit, loop.time())
        self._stop_timer()
        if keys is None and (deadline := self._collector.deadline) is not None:
            self._timer = loop.call_at(deadline, self._on_due, deadline)
        return keys

    def expire(self, deadline: float) -> KeypadEntry | None:
        """The open entry, if its timeout set for ``deadline`` still holds (no key since)."""
        return self._collector.expire(deadline)

    def flush(self) -> KeypadEntry | None:
        """End the open entry now (None when there is none)."""
        self._stop_timer()
        return self._collector.flush(asyncio.get_running_loop().time())

    @property
    def started_at(self) -> float | None:
        """Wall time of the open entry's first key (None: no entry open)."""
        started = self._collector.started_at
        return None if started is None else self.wall(started)

    def wall(self, loop_time: float) -> float:
        """Wall time of a moment of the keypad's (the event loop's) clock."""
        return loop_time + self._wall_offset()

    def entry(self, keys: KeypadEntry) -> TranscriptEntry:
        """The user message of ``keys`` in the call's transcript (both times from one reading
        of the clocks: read twice, the later reading could put the start after the end)."""
        offset = self._wall_offset()
        return TranscriptEntry("user", keys.text, keys.started_at + offset, keys.ended_at + offset)

    def _wall_offset(self) -> float:
        """Wall clock minus the event loop's clock, now."""
        return self._wall() - asyncio.get_running_loop().time()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
