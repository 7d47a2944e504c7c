"""The OpenAPI description of ``GET /usage`` and of a call's ``usage`` object."""

from __future__ import annotations

from voicedock.api.openapi_schema import Schema, obj, operation, ref
from voicedock.api.usage_routes import CSV_COLUMNS
from voicedock.domain.usage import GROUP_BY, MAX_RANGE_DAYS

_DATE: Schema = {"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_SECONDS: Schema = {"type": "number", "minimum": 0}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_STT = obj(
    {
        "provider": {"type": "string", "description": "stt_config.provider"},
        "audio_seconds": {
            **_SECONDS,
            "description": "Seconds of caller audio transcribed (the caller's spoken turns)",
        },
    },
    ("provider", "audio_seconds"),
)
_TTS = obj(
    {
        "provider": {"type": "string", "description": "tts_config.provider"},
        "characters": {
            **_COUNT,
            "description": "Characters the call spoke (as the transcript shows them; a "
            "synthesis served from the node's cache counts too)",
        },
    },
    ("provider", "characters"),
)
_BILLABLE = {
    **_COUNT,
    "description": "Connected time rounded up per started second (1/1 granularity)",
}
_CONNECTED = {
    **_SECONDS,
    "description": "From the answer to the end, each truncated to the millisecond",
}
_GROUP_FIELDS: dict[str, Schema] = {
    "calls": _COUNT,
    "connected_seconds": _CONNECTED,
    "connected_minutes": {**_SECONDS, "description": "connected_seconds / 60, 2 decimals"},
    "billable_seconds": _BILLABLE,
    "by_outcome": {"type": "array", "items": ref("UsageOutcome")},
    "stt": {"type": "array", "items": _STT},
    "tts": {"type": "array", "items": _TTS},
}

USAGE_SCHEMAS: dict[str, Schema] = {
    "CallUsage": obj(
        {
            "connected_seconds": _CONNECTED,
            "billable_seconds": _BILLABLE,
            "stt": {"type": "array", "items": _STT},
            "tts": {"type": "array", "items": _TTS},
        },
        ("connected_seconds", "billable_seconds", "stt", "tts"),
    ),
    "UsageOutcome": obj(
        {
            "direction": {"enum": ["inbound", "outbound"]},
            "status": {"type": "string", "description": "The call's status as stored"},
            "end_reason": {"type": ["string", "null"], "description": "As stored"},
            "calls": _COUNT,
            "connected_seconds": _CONNECTED,
            "billable_seconds": _BILLABLE,
        },
        ("direction", "status", "end_reason", "calls", "connected_seconds", "billable_seconds"),
    ),
    "UsageGroup": obj(
        {
            "key": {
                "type": ["string", "null"],
                "description": "The UTC day (YYYY-MM-DD), or the assistant, number or campaign "
                "id; null: the calls without one",
            },
            **_GROUP_FIELDS,
        },
        ("key", *_GROUP_FIELDS),
    ),
    "UsageReport": obj(
        {
            "start_date": _DATE,
            "end_date": _DATE,
            "group_by": {"enum": list(GROUP_BY)},
            "groups": {"type": "array", "items": ref("UsageGroup")},
            "totals": obj(_GROUP_FIELDS, tuple(_GROUP_FIELDS)),
        },
        ("start_date", "end_date", "group_by", "groups", "totals"),
    ),
}


def _usage() -> Schema:
    op = operation(
        "The organization's calls, connected and billable time and speech-provider use, per "
        "UTC day, assistant, number or campaign (JSON, or CSV with format=csv or "
        "Accept: text/csv)",
        ("200", "UsageReport"),
        params=[
            {
                "name": "start_date",
                "in": "query",
                "schema": _DATE,
                "description": "First UTC day (calls created on it count); default: end_date",
            },
            {
                "name": "end_date",
                "in": "query",
                "schema": _DATE,
                "description": "Last UTC day, included; default: today. "
                f"At most {MAX_RANGE_DAYS} days from start_date to end_date (else 422).",
            },
            {"name": "group_by", "in": "query", "schema": {"enum": list(GROUP_BY)}},
            {
                "name": "format",
                "in": "query",
                "schema": {"enum": ["json", "csv"]},
                "description": "csv: the same numbers as CSV (also with Accept: text/csv)",
            },
        ],
        errors="400 401 422",
    )
    op["responses"]["200"]["content"]["text/csv"] = {
        "schema": {
            "type": "string",
            "description": "Columns " + ", ".join(CSV_COLUMNS) + ": a row per group and "
            'outcome (kind "calls") and per group and speech provider (kinds stt, tts)',
        }
    }
    return op


USAGE_PATHS: dict[str, Schema] = {"/usage": {"get": _usage()}}
