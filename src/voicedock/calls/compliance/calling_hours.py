"""Calling hours in the callee's local time: when an automated call (``POST /calls/outbound``,
a scheduled call, a campaign's contact) may reach a number.

The hours are the operator's, per country (``[compliance.calling_hours]``: by default the
United States' 08:00-21:00, every other country at any time), read in the number's own time
zones as libphonenumber's numbering plans give them (``domain/number_plan.time_zones``). A
number whose range spans several zones (a US toll-free number, a mobile range of a large
country) takes the strictest: it may be called only while it is within the hours in every one
of them. A number of no known zone (global services) is judged in UTC.

Pure functions of the time they are given (the engine's clock, or the dialer's), as campaign
windows are (``calls/campaigns/window.py``: the same ``is_open`` and ``next_opening``).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from voicedock.calls.policy import DestinationRefused
from voicedock.config import CallingHoursSettings
from voicedock.domain.campaigns import CallingWindow, is_open, next_opening
from voicedock.domain.number_plan import classify, time_zones
from voicedock.errors import Forbidden

OUTSIDE_CALLING_HOURS = "outside-calling-hours"
OUTSIDE_HOURS_ERROR = "Outside calling hours"
_EVERY_DAY = frozenset(range(1, 8))
# How many times the next allowed moment is looked for across a number's zones; a number whose
# zones' hours never overlap is tried again a day later.
_MAX_STEPS = 16


@dataclasses.dataclass(frozen=True, slots=True)
class LocalHours:
    """A number's calling hours (``HH:MM-HH:MM``) and the zones they are read in."""

    hours: str
    window: CallingWindow
    zones: tuple[ZoneInfo, ...]


class OutsideCallingHours(DestinationRefused):
    """403: the number's local time is outside its calling hours (``reason``:
    ``outside-calling-hours``, in the body too)."""

    error = OUTSIDE_HOURS_ERROR

    def __init__(self, message: str) -> None:
        Forbidden.__init__(self, message, extra={"reason": OUTSIDE_CALLING_HOURS})
        self.reason = OUTSIDE_CALLING_HOURS


class CallingHours:
    def __init__(self, settings: CallingHoursSettings) -> None:
        self._countries = {c: _window(h) for c, h in settings.countries.items()}
        self._default = None if settings.default is None else _window(settings.default)

    def hours_of(self, number: str) -> LocalHours | None:
        """The hours ``number`` (E.164) may be called in; ``None``: any time."""
        info = classify(number)
        if info is None:
            return None
        chosen = self._countries.get(info.region, self._default)
        if chosen is None:
            return None
        hours, window = chosen
        zones = tuple(ZoneInfo(z) for z in time_zones(number)) or (ZoneInfo("UTC"),)
        return LocalHours(hours, window, zones)

    def refusal(self, number: str, now: datetime) -> OutsideCallingHours | None:
        """Why ``number`` may not be called at ``now`` (a zone of it outside its hours, named
        with its local time), or ``None``."""
        local = self.hours_of(number)
        if local is None:
            return None
        for tz in local.zones:
            if not is_open(local.window, tz, now):
                there = now.astimezone(tz).strftime("%H:%M")
                return OutsideCallingHours(
                    f"calls to this number are allowed {local.hours} in its local time "
                    f"({_zones_text(local.zones)}); it is {there} in {tz}"
                )
        return None

    def check(self, number: str, now: datetime) -> None:
        refused = self.refusal(number, now)
        if refused is not None:
            raise refused

    def next_allowed(self, number: str, now: datetime) -> datetime:
        """``now`` when ``number`` may be called now, else the first moment it may be (each
        zone opening in turn until all are within the hours at once)."""
        local = self.hours_of(number)
        if local is None:
            return now
        at = now
        for _ in range(_MAX_STEPS):
            closed = [tz for tz in local.zones if not is_open(local.window, tz, at)]
            if not closed:
                return at
            at = max(next_opening(local.window, tz, at) for tz in closed)
        return now + timedelta(days=1)


def _zones_text(zones: tuple[ZoneInfo, ...]) -> str:
    if len(zones) <= 3:
        return ", ".join(map(str, zones))
    return f"{len(zones)} time zones, each within them"


def _window(hours: str) -> tuple[str, CallingWindow]:
    start, end = (int(t[:2]) * 60 + int(t[3:]) for t in hours.split("-"))
    return hours, CallingWindow(days=_EVERY_DAY, start=start, end=end)


__all__ = [
    "OUTSIDE_CALLING_HOURS",
    "OUTSIDE_HOURS_ERROR",
    "CallingHours",
    "LocalHours",
    "OutsideCallingHours",
]
