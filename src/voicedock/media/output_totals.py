"""``OutputTotals``: the outbound media counters of every call this process served, for metrics.

Each call's pacer keeps its own ``PacerStats``; ``track`` counts a call's stats while it runs
and folds them into the totals when it ends, so the sums only grow (Prometheus counters).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from voicedock.media.pacer import PacerStats


@dataclass(frozen=True, slots=True)
class OutputCounts:
    frames_sent: int = 0
    lateness_seconds: float = 0.0  # summed over the frames sent
    frames_cleared: int = 0  # queued frames dropped unsent at barge-in
    underruns: int = 0  # ticks where the speech being played had no frame ready
    schedule_resets: int = 0  # the clock fell so far behind that missed ticks were skipped

    def plus(self, stats: PacerStats) -> OutputCounts:
        return OutputCounts(
            self.frames_sent + stats.frames_sent,
            self.lateness_seconds + stats.lateness_total,
            self.frames_cleared + stats.frames_cleared,
            self.underruns + stats.underruns,
            self.schedule_resets + stats.schedule_resets,
        )


class OutputTotals:
    def __init__(self) -> None:
        self._ended = OutputCounts()
        self._live: dict[int, PacerStats] = {}

    @asynccontextmanager
    async def track(self, stats: PacerStats) -> AsyncIterator[None]:
        """Count ``stats`` while the block runs, and for good once it ends."""
        self._live[id(stats)] = stats
        try:
            yield
        finally:
            del self._live[id(stats)]
            self._ended = self._ended.plus(stats)

    def snapshot(self) -> OutputCounts:
        counts = self._ended
        for stats in self._live.values():
            counts = counts.plus(stats)
        return counts
