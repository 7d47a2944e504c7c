"""A virtual time source for the pacer and the media clock (time moves only when they sleep),
and the send side that records what a pacer wrote when."""

from __future__ import annotations

import asyncio

from voicedock.media.pacer import Pacer


class VirtualClock:
    """``jitter`` makes every wake-up late; ``stall_at`` adds a one-off delay to the n-th."""

    def __init__(self, jitter: float = 0.0, *, start: float = 1000.0) -> None:
        self.now = start
        self.jitter = jitter
        self.sleeps: list[float] = []
        self.stall_at: dict[int, float] = {}

    @property
    def wakeups(self) -> int:
        return len(self.sleeps)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.jitter + self.stall_at.get(len(self.sleeps), 0.0)
        await asyncio.sleep(0)


class Recorder:
    """The send side: records (virtual time, frame); stops the pacer after ``limit`` frames."""

    def __init__(self, clock: VirtualClock, limit: int | None = None) -> None:
        self.clock = clock
        self.limit = limit
        self.sent: list[tuple[float, bytes]] = []
        self.pacer: Pacer | None = None

    def __call__(self, frame: bytes) -> None:
        self.sent.append((self.clock.now, frame))
        if self.limit is not None and len(self.sent) >= self.limit and self.pacer is not None:
            self.pacer.stop()

    @property
    def frames(self) -> list[bytes]:
        return [frame for _, frame in self.sent]

    @property
    def times(self) -> list[float]:
        return [t for t, _ in self.sent]
