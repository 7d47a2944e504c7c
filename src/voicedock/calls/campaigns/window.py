"""Calling windows: on which weekdays and between which local times a contact may be called.

A window is stored as ``{"days": [1, ..., 7], "start": "HH:MM", "end": "HH:MM"}`` (ISO weekdays,
1 = Monday; ``end`` excluded; ``end`` before ``start`` spans midnight, belonging to the day it
starts on) and applied in the contact's time zone. Pure functions of the time they are given,
so they are tested on a virtual clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from voicedock.domain.campaigns import CallingWindow
from voicedock.domain.records import JsonObject
from voicedock.errors import BadRequest

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


def zone(name: str, key: str = "timezone") -> ZoneInfo:
    """The IANA time zone ``name`` (400 naming ``key`` when unknown)."""
    if not isinstance(name, str) or not name or len(name) > 64 or ".." in name:
        raise BadRequest(f"{key} must be an IANA time zone name such as Europe/Amsterdam")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"{key}: unknown time zone {name!r}") from None


def parse_window(value: object, key: str = "calling_window") -> JsonObject:
    """The API's window → its stored form (days as ISO numbers); 400 on anything else."""
    if not isinstance(value, dict) or set(value) - {"days", "start", "end"}:
        raise BadRequest(f"{key} must be an object with days, start and end")
    days_in = value.get("days", [1, 2, 3, 4, 5, 6, 7])
    if not isinstance(days_in, list) or not days_in:
        raise BadRequest(f"{key}.days must be a non-empty list of weekdays")
    days: set[int] = set()
    for day in days_in:
        number = _DAY_NAMES.get(day.lower()) if isinstance(day, str) else day
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 7:
            raise BadRequest(f"{key}.days: each day is 1-7 (Monday = 1) or mon, tue, ... sun")
        days.add(number)
    start, end = (_minutes(value.get(k), f"{key}.{k}") for k in ("start", "end"))
    if start == end:  # valid fields, but a window of no time: nothing could ever be called
        raise BadRequest(f"{key}: start and end must differ", error="Empty calling window")
    return {"days": sorted(days), "start": _hhmm(start), "end": _hhmm(end)}


def window_of(stored: JsonObject) -> CallingWindow:
    return CallingWindow(
        days=frozenset(int(d) for d in stored["days"]),
        start=_minutes(stored["start"], "start"),
        end=_minutes(stored["end"], "end"),
    )


def is_open(window: CallingWindow, tz: ZoneInfo, now: datetime) -> bool:
    local = now.astimezone(tz)
    minute = local.hour * 60 + local.minute
    if window.start < window.end:
        return local.isoweekday() in window.days and window.start <= minute < window.end
    # Spans midnight: the evening of a listed day, or the morning after one.
    if minute >= window.start:
        return local.isoweekday() in window.days
    yesterday = (local - timedelta(days=1)).isoweekday()
    return minute < window.end and yesterday in window.days


def next_opening(window: CallingWindow, tz: ZoneInfo, now: datetime) -> datetime:
    """``now`` when the window is open, else when it next opens (UTC)."""
    if is_open(window, tz, now):
        return now
    local_day = now.astimezone(tz).date()
    for offset in range(8):
        day = local_day + timedelta(days=offset)
        if day.isoweekday() not in window.days:
            continue
        opening = datetime.combine(
            day, time(window.start // 60, window.start % 60), tzinfo=tz
        ).astimezone(UTC)
        if opening > now:
            return opening
    raise AssertionError("a window with at least one day opens within a week")


def _minutes(value: object, key: str) -> int:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BadRequest(f"{key} must be a time HH:MM (24-hour)")
    return int(match.group(1)) * 60 + int(match.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


__all__ = ["is_open", "next_opening", "parse_window", "window_of", "zone"]
