"""Calling hours in the callee's local time: when an automated call (``POST /calls/outbound``,
a scheduled call, a campaign's contact) may reach a number.

The hours are the operator's, per country (``[compliance.calling_hours]``: by default the
United States' 08:00-21:00, every other country at any time), read in the number's own time
zones as libphonenumber's numbering plans give them (``domain/number_plan.time_zones``). A
number whose range spans several zones (a US toll-free number, a mobile range of a large
country) takes the strictest: it may be called only while it is within the hours in every one
of them. A number of no known zone (global services) is judged in UTC. An organization's own
hours (``PATCH /organization`` ``calling_hours``) narrow the operator's, never widen them: a
call must be within both.

Pure functions of the time they are given (the engine's clock, or the dialer's), as campaign
windows are (``calls/campaigns/window.py``: the same ``is_open`` and ``next_opening``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from voicedock.calls.policy import DestinationRefused
from voicedock.config import CallingHoursSettings
from voicedock.domain.campaigns import CallingWindow, daily_window, is_open, next_opening
from voicedock.domain.number_plan import classify, time_zones
from voicedock.errors import Forbidden

OUTSIDE_CALLING_HOURS = "outside-calling-hours"
OUTSIDE_HOURS_ERROR = "Outside calling hours"
# How many times the next allowed moment is looked for across a number's zones; a number whose
# zones' hours never overlap is tried again a day later.
_MAX_STEPS = 16
_UTC = ZoneInfo("UTC")


@dataclasses.dataclass(frozen=True, slots=True)
class Hours:
    """Daily hours as written (``HH:MM-HH:MM``) and as a window."""

    text: str
    window: CallingWindow

    @classmethod
    def of(cls, text: str) -> Hours:
        return cls(text, daily_window(text))


@dataclasses.dataclass(frozen=True, slots=True)
class LocalHours:
    """A number's calling hours (the operator's, the organization's: within each) and the
    zones they are read in."""

    hours: tuple[Hours, ...]
    zones: tuple[ZoneInfo, ...]

    def closed(self, at: datetime) -> list[tuple[Hours, ZoneInfo]]:
        """The hours and zones in which ``at`` is outside them."""
        return [(h, tz) for h in self.hours for tz in self.zones if not is_open(h.window, tz, at)]


class OutsideCallingHours(DestinationRefused, error=OUTSIDE_HOURS_ERROR):
    """403: the number's local time is outside its calling hours (``reason``:
    ``outside-calling-hours``, in the body too)."""

    def __init__(self, message: str) -> None:
        Forbidden.__init__(self, message, extra={"reason": OUTSIDE_CALLING_HOURS})
        self.reason = OUTSIDE_CALLING_HOURS


class CallingHours:
    def __init__(self, settings: CallingHoursSettings) -> None:
        self._countries = {c: Hours.of(h) for c, h in settings.countries.items()}
        self._default = None if settings.default is None else Hours.of(settings.default)

    def hours_of(self, number: str, narrower: str | None = None) -> LocalHours | None:
        """The hours ``number`` (E.164) may be called in, the operator's for its country and
        the organization's (``narrower``); ``None``: any time."""
        info = classify(number)
        if info is None:
            return None
        chosen = self._countries.get(info.region, self._default)
        hours = tuple(
            h for h in (chosen, None if narrower is None else Hours.of(narrower)) if h is not None
        )
        if not hours:
            return None
        zones = tuple(ZoneInfo(z) for z in time_zones(number)) or (_UTC,)
        return LocalHours(hours, zones)

    def refusal(
        self, number: str, now: datetime, narrower: str | None = None
    ) -> OutsideCallingHours | None:
        """Why ``number`` may not be called at ``now`` (a zone of it outside its hours, named
        with its local time), or ``None``."""
        local = self.hours_of(number, narrower)
        closed = [] if local is None else local.closed(now)
        if local is None or not closed:
            return None
        hours, tz = closed[0]
        there = now.astimezone(tz).strftime("%H:%M")
        return OutsideCallingHours(
            f"calls to this number are allowed {hours.text} in its local time "
            f"({_zones_text(local.zones)}); it is {there} in {tz}"
        )

    def next_allowed(self, number: str, now: datetime, narrower: str | None = None) -> datetime:
        """``now`` when ``number`` may be called now, else the first moment it may be (each
        closed hours' opening in turn until all are open at once, in every zone)."""
        local = self.hours_of(number, narrower)
        if local is None:
            return now
        at = now
        for _ in range(_MAX_STEPS):
            closed = local.closed(at)
            if not closed:
                return at
            at = max(next_opening(h.window, tz, at) for h, tz in closed)
        return now + timedelta(days=1)


def _zones_text(zones: tuple[ZoneInfo, ...]) -> str:
    if len(zones) <= 3:
        return ", ".join(map(str, zones))
    return f"{len(zones)} time zones, each within them"


__all__ = [
    "OUTSIDE_CALLING_HOURS",
    "OUTSIDE_HOURS_ERROR",
    "CallingHours",
    "Hours",
    "LocalHours",
    "OutsideCallingHours",
]
