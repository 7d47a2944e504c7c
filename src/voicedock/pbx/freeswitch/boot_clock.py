"""When FreeSWITCH started, which tells a reconnect to the same FreeSWITCH from a restarted one.

``api status`` reports the uptime (``UP 0 years, 0 days, 1 hour, ...``); ``BootClock`` turns it
into a start time on our clock and calls a start outside the last one's window a restart.
"""

from __future__ import annotations

import re
import time

from voicedock.pbx.freeswitch.esl.client import EslClient

__all__ = ["BootClock", "parse_uptime"]

_UPTIME_UNITS = {
    "year": 365 * 86400.0,
    "day": 86400.0,
    "hour": 3600.0,
    "minute": 60.0,
    "second": 1.0,
    "millisecond": 0.001,
    "microsecond": 0.000001,
}
_UPTIME_PART = re.compile(r"(\d+) (year|day|hour|minute|second|millisecond|microsecond)s?\b")


def parse_uptime(status: str) -> float | None:
    """Seconds since FreeSWITCH started, from the first line of ``api status``."""
    first = status.strip().splitlines()[0] if status.strip() else ""
    if not first.startswith("UP "):
        return None
    parts = _UPTIME_PART.findall(first)
    if not parts:
        return None
    return sum(int(count) * _UPTIME_UNITS[unit] for count, unit in parts)


class BootClock:
    """When FreeSWITCH started, from ``api status``: our clock minus its uptime. Known to lie
    between the uptime subtracted from the moment the command was sent and from the moment
    its reply was read (the round trip, however slow the event loop, never passes for a
    restart); a boot outside the recorded window (beyond ``tolerance``, for clock slew) is a
    restart, even of a FreeSWITCH that ran for only a few seconds. A check only looks: the
    start it saw is kept by ``record``, once its restart is handled, so that a restart whose
    handling was cut short (the link dropped) is seen again by the next check."""

    def __init__(self, tolerance: float = 1.0) -> None:
        self.tolerance = tolerance
        self.window: tuple[float, float] | None = None  # earliest, latest boot (recorded)
        self._seen: tuple[float, float] | None = None  # as the last check saw it

    async def check(self, esl: EslClient) -> bool:
        """Ask FreeSWITCH its uptime; True if it started again since the recorded start."""
        sent = time.monotonic()
        return self.restarted(await esl.api("status"), sent=sent)

    def restarted(self, status: str, *, sent: float, now: float | None = None) -> bool:
        """Look at the ``api status`` output sent at ``sent`` and read at ``now``; True if it
        started again since the recorded start (``record`` keeps the start it saw)."""
        uptime = parse_uptime(status)
        if uptime is None:
            return False
        read = time.monotonic() if now is None else now
        window = self._seen = (sent - uptime, read - uptime)
        previous = self.window
        if previous is None:
            return False
        return window[0] > previous[1] + self.tolerance or window[1] < previous[0] - self.tolerance

    def record(self) -> None:
        """Keep the start the last check saw (after the restart it told of is handled)."""
        if self._seen is not None:
            self.window, self._seen = self._seen, None
