"""Calling windows: on which weekdays and between which local times a contact may be called.

A window is stored as ``{"days": [1, ..., 7], "start": "HH:MM", "end": "HH:MM"}`` (ISO weekdays,
1 = Monday; ``end`` excluded; ``end`` before ``start`` spans midnight, belonging to the day it
starts on) and applied in the contact's time zone. Pure functions of the time they are given,
so they are tested on a virtual clock (``is_open`` and ``next_opening`` are the domain's,
shared with the calling hours of ``calls/compliance/``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from voicedock.domain.campaigns import CallingWindow, is_open, next_opening
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.errors import BadRequest

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


def zone(name: object, key: str = "timezone") -> ZoneInfo:
    """The IANA time zone ``name`` (400 naming ``key`` when it is none)."""
    if not isinstance(name, str) or not name or len(name) > 64 or ".." in name:
        raise BadRequest(f"{key} must be an IANA time zone name such as Europe/Amsterdam")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadRequest(f"{key}: unknown time zone {name!r}") from None


def stored_window(
    days: Sequence[int | str], start: str, end: str, key: str = "calling_window"
) -> JsonObject:
    """A window as sent (days as ISO numbers or names, times ``HH:MM``) → its stored form;
    400 when it leaves no time to call."""
    numbers = sorted({_DAY_NAMES[d.lower()] if isinstance(d, str) else d for d in days})
    first, last = _minutes(start, f"{key}.start"), _minutes(end, f"{key}.end")
    if first == last:  # valid fields, but a window of no time: nothing could ever be called
        raise BadRequest(f"{key}: start and end must differ", error="Empty calling window")
    return {"days": list[JsonValue](numbers), "start": _hhmm(first), "end": _hhmm(last)}


class _StoredWindow(msgspec.Struct, kw_only=True, frozen=True):
    """A calling window as ``stored_window`` stores it."""

    days: list[int]
    start: str
    end: str


def window_of(stored: JsonObject) -> CallingWindow:
    window = msgspec.convert(stored, _StoredWindow)
    return CallingWindow(
        days=frozenset(window.days),
        start=_minutes(window.start, "start"),
        end=_minutes(window.end, "end"),
    )


def _minutes(value: object, key: str) -> int:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise BadRequest(f"{key} must be a time HH:MM (24-hour)")
    return int(match.group(1)) * 60 + int(match.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


__all__ = ["is_open", "next_opening", "stored_window", "window_of", "zone"]
