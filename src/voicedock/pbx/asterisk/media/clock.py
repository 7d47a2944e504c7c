"""``MediaClock``: one 20 ms clock per process driving the output of every media session.

A timer per session costs a wake-up, a task switch and an awaited send per frame; at hundreds
of calls those wake-ups collide and their jitter is what a caller hears. The clock runs one
ABSOLUTE schedule (``deadline += step``: scheduling error never accumulates) and on each tick
visits some of the attached pacers (``Pacer.advance``).

A visit is cheap: a pacer writes only once no more than ``low`` (60 ms) of its audio is
written beyond now, and then writes up to ``high`` (140 ms) ahead, frames and the marks
between them in one system call (``frame_writer``). So Asterisk's queue (which
plays on its own 20 ms timer) always holds 60-140 ms of a session's audio, a session costs one
write per 100 ms instead of one per frame, and a visit up to 60 ms late is never heard. The
margin costs nothing at barge-in (FLUSH_MEDIA empties Asterisk's queue) nor when a reply
starts (the silence queued ahead is cut, see ``Pacer``). ``low = high = 0`` is one frame per
period written at its due time. The period is cut into ``slots`` phases (10, 2 ms apart) and
each session joins the least occupied one, so a tick visits a tenth of the sessions.

A late wake-up runs the missed ticks back to back; a pacer whose schedule fell more than its
``max_catch_up_frames`` behind re-anchors instead of bursting the missed frames, which would
only add lasting latency in the PBX's queue. A pacer paused by XOFF, stopped, or whose
connection is congested sends nothing on a visit and keeps its queue. One pacer's failing
visit stops that pacer (its session then ends as broken), never the clock nor the other
sessions.

``MediaClock.shared()`` is the clock of the running event loop. Its one task belongs to the
clock's own ``Supervisor``: started when the first pacer attaches (``async with
clock.driving(pacer)``), in a context of its own (it is bound to no call, whichever attached
first), and cancelled and awaited when the last one detaches. The time source
and sleep are injectable, so the schedule is tested on a virtual clock.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from voicedock.aio import Supervisor
from voicedock.media.pacer import FRAME_PERIOD, Pacer, TickStats

log = logging.getLogger("voicedock.media")

LOW: Final = 0.060
"""A session writes once no more than this of its audio is queued ahead: the margin a late
visit eats into before anything is heard."""
HIGH: Final = 0.140
"""How far ahead a session then writes: five frames per write (due from just past ``LOW`` up to
``HIGH``)."""

_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[bool, MediaClock]] = (
    weakref.WeakKeyDictionary()
)


@dataclass(slots=True)
class ClockStats(TickStats):
    schedule_resets: int = 0
    """Late wake-ups that started a fresh schedule instead of running the missed ticks."""


class MediaClock:
    def __init__(
        self,
        *,
        period: float = FRAME_PERIOD,
        slots: int = 10,
        low: float = LOW,
        high: float = HIGH,
        max_catch_up_frames: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if slots < 1:
            raise ValueError("a clock needs at least one slot")
        if not 0 <= low <= high:
            raise ValueError("a clock needs 0 <= low <= high")
        self.period = period
        self.slots = slots
        self.step = period / slots
        self.low = low
        self.high = high
        self._max_catch_up = max_catch_up_frames * period
        self._clock = clock
        self._sleep = sleep
        self._pacers: dict[Pacer, int] = {}  # pacer -> its slot
        self._slots: list[tuple[Pacer, ...]] = [() for _ in range(self.slots)]
        self._tasks: Supervisor | None = None
        self.stats = ClockStats()

    @classmethod
    def shared(cls, *, ahead: bool = True) -> MediaClock:
        """The clock of the running event loop (one per process, per loop). ``ahead=False``:
        the one that writes each frame at its due time, nothing ahead (``low = high = 0``),
        for legs where the PBX plays what arrives at once (RTP, AudioSocket)."""
        loop = asyncio.get_running_loop()
        clocks = _shared.setdefault(loop, {})
        clock = clocks.get(ahead)
        if clock is None:
            clock = clocks[ahead] = cls() if ahead else cls(low=0.0, high=0.0)
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
            pacer.low, pacer.high = self.low, self.high
        if self._tasks is None:
            tasks = Supervisor("media clock", log)
            self._tasks = tasks
            await tasks.start()
            # The clock is the node's, not the first session's: its task starts from an empty
            # context, so it does not inherit the call (log context) that attached first.
            contextvars.Context().run(tasks.spawn, self._run(tasks))

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
            except ConnectionError as exc:  # the call hung up between two visits: expected
                log.debug("media clock: a session's connection closed: %s", exc)
                pacer.stop(exc.with_traceback(None))  # its frames hold the pacer: a cycle
            except Exception as exc:  # noqa: BLE001 - one session's failure is not the clock's
                log.warning("media clock: a session's tick failed: %s", exc)
                pacer.stop(exc.with_traceback(None))
