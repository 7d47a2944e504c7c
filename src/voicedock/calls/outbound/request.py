"""What ``POST /calls/outbound`` asks for: an ``OutboundRequest``, and the checks of it no
schema states (which assistant it names, the bounds of its metadata across levels, its
schedule's date-times; the schedule against the clock: ``check_schedule``).

The body is read by its model (``api/models/calls.py`` ``OutboundCallRequest``), which makes
the request. Three documented modes: reference (``assistant_id``), transient (``assistant``)
and hybrid (``assistant_id`` + ``assistant_override``). The deprecated ``agent_id``/``agent``/
``agent_config`` are aliases, reported in ``deprecated`` so the API can answer with a
``Deprecation`` header.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from voicedock.domain.json import JsonObject
from voicedock.domain.squads import Member
from voicedock.errors import BadRequest

DEPRECATED_ALIASES = {
    "agent_id": "assistant_id",
    "agent": "assistant",
    "agent_config": "assistant_override",
}
# How long an unanswered call rings before it ends "no-answer" (the PBX's originate timeout).
RING_TIMEOUT_DEFAULT = 30
RING_TIMEOUT_BOUNDS = (5, 120)
CONTEXT_MAX = 20_000
# A call's metadata: the client's own JSON object, stored with the call and carried in its
# webhooks. Bounded so that it stays a label, not a payload.
METADATA_MAX_BYTES = 16_384  # serialized as compact UTF-8 JSON
METADATA_MAX_DEPTH = 5  # nested objects and arrays below the top-level object
METADATA_MAX_KEYS = 100  # keys of every object in it, in all
METADATA_ERROR = "Metadata too large"  # bounds across its levels, which no schema states
# A scheduled call: scheduled_at at most this far ahead, and not earlier than now minus the
# tolerance (a clock a little behind ours); latest_at, after scheduled_at, defaults to it plus
# the window.
SCHEDULE_MAX_AHEAD = timedelta(days=30)
SCHEDULE_PAST_TOLERANCE = timedelta(seconds=60)
SCHEDULE_WINDOW_DEFAULT = timedelta(hours=1)
# The title of a schedule the clock refuses (no schema can state "not in the past").
SCHEDULE_ERROR = "Invalid schedule"
# A date-time that is not one (``{field}``: its name).
MOMENT_FORMAT = "{field} must be an ISO 8601 date-time with a time zone, e.g. 2026-12-13T10:00:00Z"
_ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    destination: str
    assistant_id: str | None = None
    assistant: JsonObject | None = None  # transient mode: a full configuration
    assistant_override: JsonObject | None = None  # hybrid mode
    squad_id: str | None = None  # the squad whose first member answers (no assistant then)
    squad: tuple[Member, ...] | None = None  # or an inline squad's members, checked
    number_id: str | None = None
    first_message: str | None = None
    context: str | None = None
    ring_timeout_seconds: int = RING_TIMEOUT_DEFAULT
    record: bool | None = None  # this call's recording, whatever the assistant says
    metadata: JsonObject | None = None  # the client's own object, echoed in record and webhooks
    # Values of the {{placeholders}} in the assistant's texts and the context (as campaigns).
    variables: dict[str, str] = field(default_factory=dict)
    scheduled_at: datetime | None = None  # None: dialed now
    latest_at: datetime | None = None  # never dialed after it (with scheduled_at only)
    deprecated: tuple[str, ...] = ()  # deprecated field names the client used

    @property
    def party(self) -> str | None:
        """The callee, by whose number a traffic split chooses the assistant's version (None:
        no callee, a split's choice not made)."""
        return self.destination or None


def check_metadata(value: JsonObject | None, key: str = "metadata") -> JsonObject | None:
    """A client's metadata object within its bounds across levels (``None``: none was sent)."""
    if value is None:
        return None
    keys, depth = 0, 0
    level: list[object] = [value]
    while level:  # the containers at ``depth``, breadth first (before any recursion)
        if depth > METADATA_MAX_DEPTH:
            raise BadRequest(
                f"{key} must nest at most {METADATA_MAX_DEPTH} levels deep", error=METADATA_ERROR
            )
        below: list[object] = []
        for item in level:
            if isinstance(item, dict):
                keys += len(item)
                item = list(item.values())
            assert isinstance(item, list)
            below.extend(c for c in item if isinstance(c, dict | list))
        level, depth = below, depth + 1
    if keys > METADATA_MAX_KEYS:
        raise BadRequest(
            f"{key} must have at most {METADATA_MAX_KEYS} keys in all", error=METADATA_ERROR
        )
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise BadRequest(f"{key} must hold JSON values only") from None
    if len(encoded.encode()) > METADATA_MAX_BYTES:
        raise BadRequest(
            f"{key} must be at most {METADATA_MAX_BYTES} bytes as JSON", error=METADATA_ERROR
        )
    return dict(value)


def moment(value: str | None, key: str) -> datetime | None:
    """A date-time of the request (ISO 8601 with a time zone), in UTC; 400 naming ``key``."""
    if value is None:
        return None
    if _ISO_DATETIME.fullmatch(value) is None:
        raise BadRequest(MOMENT_FORMAT.format(field=key))
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise BadRequest(f"{key} is not a valid date-time") from None


def check_schedule(request: OutboundRequest, now: datetime) -> tuple[datetime, datetime] | None:
    """When a scheduled call may be dialed, from and until (``None``: it is dialed now);
    400 naming the field out of bounds."""
    if request.scheduled_at is None:
        if request.latest_at is not None:
            raise BadRequest("latest_at needs scheduled_at", error=SCHEDULE_ERROR)
        return None
    earliest = request.scheduled_at
    if earliest < now - SCHEDULE_PAST_TOLERANCE:
        raise BadRequest("scheduled_at must not be in the past", error=SCHEDULE_ERROR)
    if earliest > now + SCHEDULE_MAX_AHEAD:
        raise BadRequest(
            f"scheduled_at must be at most {SCHEDULE_MAX_AHEAD.days} days ahead",
            error=SCHEDULE_ERROR,
        )
    latest = request.latest_at or earliest + SCHEDULE_WINDOW_DEFAULT
    if latest <= earliest:
        raise BadRequest("latest_at must be after scheduled_at", error=SCHEDULE_ERROR)
    if latest > earliest + SCHEDULE_MAX_AHEAD:
        raise BadRequest(
            f"latest_at must be at most {SCHEDULE_MAX_AHEAD.days} days after scheduled_at",
            error=SCHEDULE_ERROR,
        )
    return earliest, latest
