"""The OpenAPI description of ``/campaigns`` and ``/do-not-call`` (docs/campaigns.md)."""

from __future__ import annotations

from zoneinfo import available_timezones

from voicedock.api.body import MAX_OFFSET
from voicedock.api.openapi_schema import (
    DESTINATION,
    E164,
    ID,
    PATH_ID,
    TEXT,
    TIME,
    Schema,
    assistant_choice,
    nullable,
    obj,
    operation,
    ref,
    text,
)
from voicedock.calls.campaigns.request import MAX_CONCURRENT, MAX_CONTACTS
from voicedock.calls.campaigns.retries import MAX_ATTEMPTS, MAX_BACKOFF_SECONDS, RETRYABLE
from voicedock.calls.outbound_request import (
    CONTEXT_MAX,
    RING_TIMEOUT_BOUNDS,
    RING_TIMEOUT_DEFAULT,
)
from voicedock.calls.placeholders import MAX_VARIABLE_LENGTH, MAX_VARIABLES
from voicedock.domain.campaigns import CampaignStatus, ContactState

# mon ... sun, in any case (calls/campaigns/window.py lowers them).
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAME = "^(" + "|".join("".join(f"[{c.upper()}{c}]" for c in day) for day in _DAYS) + ")$"
_HHMM: Schema = {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$"}
_WINDOW = obj(
    {
        "days": {
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": 7},
                    {"type": "string", "pattern": _DAY_NAME},
                ]
            },
            "description": "ISO weekdays (1 = Monday) or mon, tue, ... sun; default every day.",
        },
        "start": _HHMM,
        "end": {
            **_HHMM,
            "description": "Excluded; before start: the window spans midnight; equal to start: "
            "422 (an empty window).",
        },
    },
    ("start", "end"),
)
_RETRIES: Schema = {
    "type": "object",
    "description": "Outcome -> rule: up to max_attempts calls in all, backoff_seconds apart. "
    "An outcome without a rule is final after one call; answered always is.",
    "propertyNames": {"enum": list(RETRYABLE)},
    "additionalProperties": obj(
        {
            "max_attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
            "backoff_seconds": {
                "type": "integer",
                "minimum": 0,
                "maximum": MAX_BACKOFF_SECONDS,
            },
        }
    ),
}
# The values of {{placeholders}}: a campaign contact's, or one outbound call's.
VARIABLES: Schema = {
    "type": "object",
    "maxProperties": MAX_VARIABLES,
    "propertyNames": ID,
    "additionalProperties": {"type": "string", "maxLength": MAX_VARIABLE_LENGTH},
    "description": "Fill {{placeholders}} in first_message, context, system_prompt and "
    "voicemail_message; a placeholder without a value stays as written.",
}
_CONTACT_IN = obj(
    {
        "destination": DESTINATION,
        "name": nullable({"type": "string", "maxLength": 200}),
        "timezone": {**nullable(ref("TimeZone")), "description": "Default: the campaign's."},
        "variables": VARIABLES,
    },
    ("destination",),
)
# A campaign names its assistant as POST /calls/outbound does (without the deprecated aliases).
ASSISTANT_CHOICE_PROPS: dict[str, Schema] = {
    "assistant_id": ID,
    "assistant": ref("AssistantConfig"),
    "assistant_override": ref("AssistantConfig"),
    "first_message": nullable(TEXT),
    "context": nullable(text(CONTEXT_MAX)),
}
ASSISTANT_CHOICE = assistant_choice(("assistant_id",), ("assistant",), ("assistant_override",))
_COUNTS: Schema = {"type": "object", "additionalProperties": {"type": "integer"}}
_PAGINATION = obj(
    {n: {"type": "integer"} for n in ("total", "limit", "offset")}, ("total", "limit", "offset")
)

CAMPAIGN_SCHEMAS: dict[str, Schema] = {
    "CampaignCreate": obj(
        {
            "name": text(200, line=True),
            **ASSISTANT_CHOICE_PROPS,
            "number_ids": {
                "type": "array",
                "items": ID,
                "description": "Caller numbers; empty: the organization's pool.",
            },
            "contacts": {
                "type": "array",
                "items": _CONTACT_IN,
                "minItems": 1,
                "maxItems": MAX_CONTACTS,
            },
            "max_concurrent": nullable(
                {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": MAX_CONCURRENT,
                    "description": "Calls of this campaign at once; 0 (the default): only the "
                    "trunk's and the organization's limits.",
                }
            ),
            "ring_timeout_seconds": nullable(
                {
                    "type": "integer",
                    "minimum": RING_TIMEOUT_BOUNDS[0],
                    "maximum": RING_TIMEOUT_BOUNDS[1],
                    "default": RING_TIMEOUT_DEFAULT,
                }
            ),
            "calling_window": nullable(_WINDOW),
            "timezone": {**ref("TimeZone"), "default": "UTC"},
            "retries": _RETRIES,
        },
        ("name", "contacts"),
    )
    | ASSISTANT_CHOICE,
    "Campaign": obj(
        {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "status": {"enum": [s.value for s in CampaignStatus]},
            "assistant_id": {"type": ["string", "null"]},
            "agent_name": {"type": ["string", "null"]},
            "number_ids": {"type": "array", "items": {"type": "string"}},
            "max_concurrent": {"type": "integer"},
            "ring_timeout_seconds": {"type": "integer"},
            "calling_window": {"anyOf": [_WINDOW, {"type": "null"}]},
            "timezone": {"type": "string"},
            "retries": _RETRIES,
            "created_at": TIME,
            "updated_at": TIME,
            "started_at": TIME,
            "finished_at": TIME,
            "progress": obj(
                {"total": {"type": "integer"}, "by_state": _COUNTS, "by_outcome": _COUNTS},
                ("total", "by_state", "by_outcome"),
            ),
        },
        ("id", "name", "status"),
        strict=False,
    ),
    "CampaignList": obj(
        {"campaigns": {"type": "array", "items": ref("Campaign")}, "pagination": _PAGINATION},
        ("campaigns", "pagination"),
    ),
    "CampaignContact": obj(
        {
            "id": {"type": "string"},
            "destination": E164,
            "name": {"type": ["string", "null"]},
            "timezone": {"type": ["string", "null"]},
            "variables": {"type": "object"},
            "state": {"enum": [s.value for s in ContactState]},
            "outcome": {
                "type": ["string", "null"],
                "description": "answered, a call error (busy, no-answer, ...), do-not-call, "
                "refused (call policy) or cancelled; while pending: the last call's.",
            },
            "attempts": {"type": "integer"},
            "next_attempt_at": TIME,
            "call_id": {"type": ["string", "null"]},
            "updated_at": TIME,
        },
        ("id", "destination", "state", "attempts"),
        strict=False,
    ),
    "CampaignContactList": obj(
        {"contacts": {"type": "array", "items": ref("CampaignContact")}, "pagination": _PAGINATION},
        ("contacts", "pagination"),
    ),
    "CampaignContactsAdd": obj(
        {"contacts": {"type": "array", "items": _CONTACT_IN, "maxItems": MAX_CONTACTS}},
        ("contacts",),
    ),
    "DoNotCallNumber": obj({"number": E164}, ("number",)),
    "TimeZone": {
        "enum": sorted(available_timezones()),
        "description": "An IANA time zone name (the node's time zone database).",
    },
}

_PAGE: list[Schema] = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    {
        "name": "offset",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET},
    },
]


def _move(summary: str) -> Schema:
    return {"post": operation(summary, ("200", "Campaign"), params=[PATH_ID], errors="401 404 409")}


def _add_contacts() -> Schema:
    op = operation(
        "Add contacts (JSON, or CSV with a header: destination, name, timezone, variables)",
        ("201", None),
        body="CampaignContactsAdd",
        params=[PATH_ID],
        errors="400 401 403 404 409 413 422",
    )
    op["requestBody"]["content"]["text/csv"] = {
        "schema": {
            "type": "string",
            # The simplest form; a header may also name timezone and variable columns.
            "pattern": r"^destination(,name)?\r?\n(\+[1-9][0-9]{6,14}\r?\n)*$",
            "description": "A header row naming destination (required), name, timezone and "
            "any variable columns, then one contact a row.",
        }
    }
    return op


CAMPAIGN_PATHS: dict[str, Schema] = {
    "/campaigns": {
        "get": operation(
            "List all campaigns", ("200", "CampaignList"), params=_PAGE, errors="400 401"
        ),
        "post": operation(
            "Create a campaign (it starts at once)",
            ("201", "Campaign"),
            body="CampaignCreate",
            errors="400 401 403 404 413 422",
        ),
    },
    "/campaigns/{id}": {
        "get": operation(
            "Get a campaign with its progress",
            ("200", "Campaign"),
            params=[PATH_ID],
            errors="401 404",
        )
    },
    "/campaigns/{id}/contacts": {
        "get": operation(
            "List a campaign's contacts",
            ("200", "CampaignContactList"),
            params=[
                PATH_ID,
                *_PAGE,
                {
                    "name": "state",
                    "in": "query",
                    "schema": {"enum": [s.value for s in ContactState]},
                },
            ],
            errors="400 401 404",
        ),
        "post": _add_contacts(),
    },
    "/campaigns/{id}/pause": _move("Pause a campaign: no new calls (calls in progress go on)"),
    "/campaigns/{id}/resume": _move("Resume a paused campaign"),
    "/campaigns/{id}/cancel": _move("Cancel a campaign: its waiting contacts end cancelled"),
    "/do-not-call": {
        "get": operation("The organization's do-not-call list", ("200", None), errors="401"),
        "post": operation(
            "Add a number to the do-not-call list",
            ("201", None),
            body="DoNotCallNumber",
            errors="400 401 413",
        ),
    },
    "/do-not-call/{number}": {
        "delete": operation(
            "Remove a number from the do-not-call list",
            ("200", None),
            params=[{**PATH_ID, "name": "number"}],
            errors="401 404",
        )
    },
}

__all__ = ["CAMPAIGN_PATHS", "CAMPAIGN_SCHEMAS"]
