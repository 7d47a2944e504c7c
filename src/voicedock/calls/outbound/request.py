"""``POST /calls/outbound`` request body: strict parsing into an ``OutboundRequest``.

Three documented modes: reference (``assistant_id``), transient (``assistant``) and hybrid
(``assistant_id`` + ``assistant_override``). The deprecated ``agent_id``/``agent``/
``agent_config`` are accepted as aliases and reported in ``deprecated`` so the API can answer
with a ``Deprecation`` header; sending an alias together with its replacement is a 400.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from voicedock.calls import fields
from voicedock.calls.assistants.config import check_config
from voicedock.calls.assistants.placeholders import parse_variables
from voicedock.domain.records import JsonObject
from voicedock.errors import BadRequest
from voicedock.validation import require_e164

DEPRECATED_ALIASES = {
    "agent_id": "assistant_id",
    "agent": "assistant",
    "agent_config": "assistant_override",
}
FIELDS = (
    "destination",
    "assistant_id",
    "assistant",
    "assistant_override",
    "number_id",
    "first_message",
    "context",
    "ring_timeout_seconds",
    "record",
    "metadata",
    "variables",
    "scheduled_at",
    "latest_at",
    *DEPRECATED_ALIASES,
)
# How long an unanswered call rings before it ends "no-answer" (the PBX's originate timeout).
RING_TIMEOUT_DEFAULT = 30
RING_TIMEOUT_BOUNDS = (5, 120)
FIRST_MESSAGE_MAX = 2_000
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
_ISO_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True, slots=True)
class OutboundRequest:
    destination: str
    assistant_id: str | None = None
    assistant: JsonObject | None = None  # transient mode: a full configuration
    assistant_override: JsonObject | None = None  # hybrid mode
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


def parse_outbound_request(body: object) -> OutboundRequest:
    obj = dict(fields.require_object(body))
    fields.reject_unknown(obj, FIELDS)
    for name in (*DEPRECATED_ALIASES.values(), *DEPRECATED_ALIASES):
        if name in obj and obj[name] is None:  # which assistant is never left open
            raise BadRequest(f"{name} must not be null")
    used_aliases: list[str] = []
    for old, new in DEPRECATED_ALIASES.items():
        if old in obj:
            if new in obj:
                raise BadRequest(f"{old} is a deprecated alias of {new}: send only {new}")
            obj[new] = obj.pop(old)
            used_aliases.append(old)
    destination = require_e164(obj.get("destination"), "destination")
    assistant_id = fields.identifier(obj, "assistant_id")
    transient = fields.sub_object(obj, "assistant")
    override = fields.sub_object(obj, "assistant_override")
    if assistant_id is None and transient is None:
        raise BadRequest("assistant_id or assistant is required")
    if assistant_id is not None and transient is not None:
        raise BadRequest(
            "send either assistant_id (optionally with assistant_override) or assistant"
        )
    if override is not None and assistant_id is None:
        raise BadRequest("assistant_override needs assistant_id (use assistant for a full config)")
    return OutboundRequest(
        destination=destination,
        assistant_id=assistant_id,
        assistant=None if transient is None else _checked(transient, "assistant"),
        assistant_override=None if override is None else _checked(override, "assistant_override"),
        number_id=fields.identifier(obj, "number_id"),
        first_message=fields.text(obj, "first_message", max_len=FIRST_MESSAGE_MAX),
        context=fields.text(obj, "context", max_len=CONTEXT_MAX),
        ring_timeout_seconds=fields.integer(
            obj, "ring_timeout_seconds", RING_TIMEOUT_DEFAULT, *RING_TIMEOUT_BOUNDS
        ),
        record=None if obj.get("record") is None else fields.boolean(obj, "record", False),
        metadata=parse_metadata(obj.get("metadata")),
        variables=parse_variables(obj.get("variables"), "variables"),
        scheduled_at=_moment(obj, "scheduled_at"),
        latest_at=_moment(obj, "latest_at"),
        deprecated=tuple(used_aliases),
    )


def parse_metadata(value: object, key: str = "metadata") -> JsonObject | None:
    """A client's metadata object, checked against the bounds (``None``: none was sent)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be a JSON object")
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


def _moment(obj: dict[str, Any], key: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or _ISO_DATETIME.fullmatch(value) is None:
        raise BadRequest(
            f"{key} must be an ISO 8601 date-time with a time zone, e.g. 2026-12-13T10:00:00Z"
        )
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


def _checked(obj: dict[str, Any], name: str) -> JsonObject:
    return check_config(obj, name, allow_profile=True)
