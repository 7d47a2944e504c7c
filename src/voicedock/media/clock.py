"""``MediaClock``: one 20 ms clock per process driving the output of every media session.

A timer per session costs a wake-up, a task switch and an awaited send per frame; at hundreds
of calls those wake-ups collide and their jitter is what a caller hears. The clock runs one
ABSOLUTE schedule (``deadline += step``: scheduling error never accumulates) and on each tick
visits some of the attached pacers (``Pacer.advance``), each of which writes its frames due
until the next visit synchronously (``voicedock.media.frame_writer``), together with the marks
between them, as one system call.

Sessions are visited every ``visit_every`` periods (5: 100 ms) and write ``lead`` (40 ms) more
than the gap to their next visit, so Asterisk's queue always holds 40-140 ms of a session's
audio: a late visit is absorbed by that margin instead of being heard, and a session costs one
write per visit instead of one per frame. The margin costs nothing at barge-in (FLUSH_MEDIA
empties Asterisk's queue) nor when a reply starts (the silence queued ahead is cut, see
``Pacer``). The visits are spread over ``slots`` phases per period (10, 2 ms apart) times
``visit_every`` periods; each session joins the least occupied one, so a tick writes a
fiftieth of the sessions, not all of them. ``visit_every=1, lead=0`` is a frame per period
written at its due time.

A late wake-up runs the missed ticks back to back; a pacer whose schedule fell more than its
``max_catch_up_frames`` behind re-anchors instead of bursting the missed frames, which would
only add lasting latency in the PBX's queue. A pacer paused by XOFF, stopped, or whose
connection is congested sends nothing on a visit and keeps its queue. One pacer's failing
visit stops that pacer (its session then ends as broken), never the clock nor the other
sessions.

``MediaClock.shared()`` is the clock of the running event loop. Its one task belongs to the
clock's own ``Supervisor``: started when the first pacer attaches (``async with
clock.driving(pacer)``) and cancelled and awaited when the last one detaches. The time source
and sleep are injectable, so the schedule is tested on a virtual clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

from voicedock.aio import Supervisor
from voicedock.media.pacer import FRAME_PERIOD, Pacer

log = logging.getLogger("voicedock.media")

VISIT_EVERY: Final = 5
"""Periods between two visits of a session (its writes are batched over them)."""
LEAD: Final = 0.040
"""Audio written beyond the next visit: the margin a late visit eats into before it is heard."""

_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MediaClock] = (
    weakref.WeakKeyDictionary()
)


class ClockStats:
    __slots__ = ("busy_seconds", "schedule_resets", "ticks")

    def __init__(self) -> None:
        self.ticks = 0
        self.schedule_resets = 0
        self.busy_seconds = 0.0
        """Time spent inside ticks (writing frames), summed: the clock's share of a core."""


class MediaClock:
    def __init__(
        self,
        *,
        period: float = FRAME_PERIOD,
        slots: int = 10,
        visit_every: int = VISIT_EVERY,
        lead: float = LEAD,
        max_catch_up_frames: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if slots < 1 or visit_every < 1:
            raise ValueError("a clock needs at least one slot and a visit every period or more")
        if lead < 0:
            raise ValueError("lead cannot be negative")
        self.period = period
        self.slots = slots * visit_every
        """Phases of one visit cycle (``visit_every`` periods)."""
        self.step = period / slots
        self.ahead = lead + (visit_every - 1) * period
        """How far past a visit a pacer writes."""
        self._max_catch_up = max_catch_up_frames * period
        self._clock = clock
        self._sleep = sleep
        self._pacers: dict[Pacer, int] = {}  # pacer -> its slot
        self._slots: list[tuple[Pacer, ...]] = [() for _ in range(self.slots)]
        self._tasks: Supervisor | None = None
        self.stats = ClockStats()

    @classmethod
    def shared(cls) -> MediaClock:
        """The clock of the running event loop (one per process, per loop)."""
        loop = asyncio.get_running_loop()
        clock = _shared.get(loop)
        if clock is None:
            clock = _shared[loop] = cls()
        return clock

    @property
    def pacers(self) -> int:
        """Pacers attached now."""
        return len(self._pacers)

    @property
    def running(self) -> bool:
        return self._tasks is not None

    @asynccontextmanager
    async def driving(self, pacer: Pacer) -> AsyncIterator[None]:
        """Tick ``pacer`` from the next period on, until the block ends."""
        await self._attach(pacer)
        try:
            yield
        finally:
            await self._detach(pacer)

    def slot_of(self, pacer: Pacer) -> int | None:
        return self._pacers.get(pacer)

    async def _attach(self, pacer: Pacer) -> None:
        if pacer not in self._pacers:
            slot = min(range(self.slots), key=lambda s: len(self._slots[s]))
            self._pacers[pacer] = slot
            self._slots[slot] = (*self._slots[slot], pacer)
            pacer.ahead = self.ahead
        if self._tasks is None:
            tasks = Supervisor("media clock", log)
            self._tasks = tasks
            await tasks.start()
            tasks.spawn(self._run(tasks))

    async def _detach(self, pacer: Pacer) -> None:
        slot = self._pacers.pop(pacer, None)
        if slot is not None:
            self._slots[slot] = tuple(p for p in self._slots[slot] if p is not pacer)
        if not self._pacers and self._tasks is not None:
            tasks, self._tasks = self._tasks, None
            await tasks.aclose()

    async def _run(self, owner: Supervisor) -> None:
        clock, step = self._clock, self.step
        deadline = clock() + step
        slot = 0
        while self._tasks is owner:
            now = clock()
            if deadline > now:
                await self._sleep(deadline - now)
                now = clock()
            if now - deadline > self._max_catch_up:
                self.stats.schedule_resets += 1
                deadline = now
            self.tick(slot, deadline)
            self.stats.busy_seconds += clock() - now
            deadline += step
            slot = (slot + 1) % self.slots

    def tick(self, slot: int, deadline: float) -> None:
        """Visit every pacer in ``slot``; ``deadline`` starts a new pacer's schedule."""
        self.stats.ticks += 1
        clock = self._clock
        for pacer in self._slots[slot]:
            try:
                pacer.advance(clock(), deadline)
            except Exception as exc:  # noqa: BLE001 - one session's failure is not the clock's
                log.warning("media clock: a session's tick failed: %s", exc)
                pacer.stop(exc)
