"""``POST /campaigns`` and ``POST /campaigns/{id}/contacts`` bodies: strict parsing.

A campaign takes its assistant as a call does (reference ``assistant_id``, transient
``assistant``, hybrid ``assistant_id`` + ``assistant_override``; parsed by
``parse_outbound_request``), caller numbers (``number_ids``; none: the organization's pool),
limits, a calling window, retry rules and its contacts. Contacts come as a JSON array of
``{"destination", "name", "timezone", "variables"}`` or as CSV whose header names the columns:
``destination`` (required), ``name``, ``timezone``, every other column a variable.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from voicedock.calls import fields
from voicedock.calls.assistants.placeholders import parse_variables
from voicedock.calls.campaigns.retries import parse_retries
from voicedock.calls.campaigns.window import parse_window, zone
from voicedock.calls.outbound.request import (
    RING_TIMEOUT_BOUNDS,
    RING_TIMEOUT_DEFAULT,
    OutboundRequest,
    parse_outbound_request,
)
from voicedock.domain.records import JsonObject
from voicedock.errors import BadRequest
from voicedock.validation import is_e164, is_token

MAX_CONTACTS = 100_000
MAX_CONCURRENT = 10_000
_ASSISTANT_FIELDS = ("assistant_id", "assistant", "assistant_override", "first_message", "context")
FIELDS = (
    "name",
    *_ASSISTANT_FIELDS,
    "number_ids",
    "contacts",
    "max_concurrent",
    "ring_timeout_seconds",
    "calling_window",
    "timezone",
    "retries",
)
_CONTACT_FIELDS = ("destination", "name", "timezone", "variables")


@dataclass(frozen=True, slots=True)
class ContactRequest:
    destination: str
    name: str | None = None
    timezone: str | None = None
    variables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CampaignRequest:
    name: str
    assistant: OutboundRequest  # the assistant fields, with the first contact as destination
    number_ids: tuple[str, ...]
    contacts: tuple[ContactRequest, ...]
    max_concurrent: int
    ring_timeout_seconds: int
    calling_window: JsonObject | None
    timezone: str
    retries: JsonObject


def parse_campaign_request(body: object) -> CampaignRequest:
    obj = fields.require_object(body)
    fields.reject_unknown(obj, FIELDS)
    contacts = parse_contacts(obj.get("contacts"))
    if not contacts:
        raise BadRequest("contacts must hold at least one contact")
    assistant = parse_outbound_request(
        {k: obj[k] for k in _ASSISTANT_FIELDS if k in obj}
        | {"destination": contacts[0].destination}
    )
    number_ids = obj.get("number_ids", [])
    if not isinstance(number_ids, list) or not all(is_token(n) for n in number_ids):
        raise BadRequest("number_ids must be a list of phone number ids")
    timezone = obj.get("timezone", "UTC")
    zone(timezone)
    window = obj.get("calling_window")
    return CampaignRequest(
        name=fields.text(obj, "name", required=True, max_len=200, multiline=False) or "",
        assistant=assistant,
        number_ids=tuple(dict.fromkeys(number_ids)),
        contacts=contacts,
        max_concurrent=fields.integer(obj, "max_concurrent", 0, 0, MAX_CONCURRENT),
        ring_timeout_seconds=fields.integer(
            obj, "ring_timeout_seconds", RING_TIMEOUT_DEFAULT, *RING_TIMEOUT_BOUNDS
        ),
        calling_window=None if window is None else parse_window(window),
        timezone=timezone,
        retries=parse_retries(obj.get("retries", {})),
    )


def parse_contacts(value: object, key: str = "contacts") -> tuple[ContactRequest, ...]:
    """A JSON array of contacts (400 naming the first bad one)."""
    if not isinstance(value, list):
        raise BadRequest(f"{key} must be a list of contacts")
    if len(value) > MAX_CONTACTS:
        raise BadRequest(f"{key}: at most {MAX_CONTACTS} contacts per request")
    return tuple(_contact(item, f"{key}[{i}]") for i, item in enumerate(value))


def parse_contacts_csv(text: str) -> tuple[ContactRequest, ...]:
    """CSV with a header row: destination, name, timezone; other columns are variables."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "destination" not in header:
        raise BadRequest("the CSV header must name a destination column")
    contacts: list[ContactRequest] = []
    for line, row in enumerate(reader, start=2):
        if None in row:
            raise BadRequest(f"CSV line {line}: more values than header columns")
        item: dict[str, Any] = {
            "destination": row.get("destination"),
            "variables": {
                k: v for k, v in row.items() if k not in _CONTACT_FIELDS and v not in (None, "")
            },
        }
        for optional in ("name", "timezone"):
            if row.get(optional):
                item[optional] = row[optional]
        contacts.append(_contact(item, f"CSV line {line}"))
        if len(contacts) > MAX_CONTACTS:
            raise BadRequest(f"at most {MAX_CONTACTS} contacts per request")
    return tuple(contacts)


def _contact(item: object, key: str) -> ContactRequest:
    if not isinstance(item, dict):
        raise BadRequest(f"{key} must be an object")
    unknown = sorted(set(item) - set(_CONTACT_FIELDS))
    if unknown:
        raise BadRequest(f"{key}: unknown field(s): {', '.join(unknown)}")
    destination = item.get("destination")
    if not is_e164(destination):
        raise BadRequest(f"{key}.destination must be E.164 (+ and 7-15 digits)")
    assert isinstance(destination, str)
    timezone = item.get("timezone")
    if timezone is not None:
        zone(timezone, f"{key}.timezone")
    name = item.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 200):
        raise BadRequest(f"{key}.name must be a string of at most 200 characters")
    variables = parse_variables(item.get("variables", {}), f"{key}.variables")
    if name is not None:
        variables = {"name": name, **variables}
    return ContactRequest(destination, name, timezone, tuple(sorted(variables.items())))


__all__ = [
    "CampaignRequest",
    "ContactRequest",
    "parse_campaign_request",
    "parse_contacts",
    "parse_contacts_csv",
]
