"""What ``POST /campaigns`` and ``POST /campaigns/{id}/contacts`` ask for: a
``CampaignRequest`` and its ``ContactRequest``s, and what no schema states of them (a contact's
time zone, its name among its variables; a CSV body's rows).

The JSON bodies are read by their models (``api/models/campaigns.py``), which make these. A
campaign takes its assistant as a call does (reference ``assistant_id``, transient
``assistant``, hybrid ``assistant_id`` + ``assistant_override``: an ``OutboundRequest``), caller
numbers (``number_ids``; none: the organization's pool), limits, a calling window, retry rules
and its contacts. Contacts come as a JSON array of ``{"destination", "name", "timezone",
"variables"}`` or as CSV whose header names the columns: ``destination`` (required), ``name``,
``timezone``, every other column a variable.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from voicedock.calls.campaigns.window import zone
from voicedock.calls.outbound.request import OutboundRequest
from voicedock.domain.json import JsonObject
from voicedock.domain.traffic_split import TrafficShare
from voicedock.errors import BadRequest

MAX_CONTACTS = 100_000
MAX_CONCURRENT = 10_000
CONTACT_FIELDS = ("destination", "name", "timezone", "variables")


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
    # Versions of its saved assistant its calls are split to (None: the assistant's own
    # split when it has one, else its current version).
    traffic_split: tuple[TrafficShare, ...] | None = None


def contact_request(
    where: str,
    destination: str,
    name: str | None = None,
    timezone: object = None,
    variables: Mapping[str, str] | None = None,
) -> ContactRequest:
    """A contact (``where``: how a 400 names it, ``contacts[0]``): its time zone one of the
    node's, its name its first variable."""
    if timezone is not None:
        zone(timezone, f"{where}.timezone")
    named = {"name": name} if name is not None else {}
    filled = {**named, **(variables or {})}
    return ContactRequest(
        destination,
        name,
        None if timezone is None else str(timezone),
        tuple(sorted(filled.items())),
    )


def contacts_csv(text: str) -> Iterator[tuple[str, dict[str, object]]]:
    """The contacts of a CSV with a header row (destination, name, timezone; other columns are
    variables), each as a JSON contact and where a 400 names it (``CSV line 2``). Its lines may
    end in CR, LF or both; what the csv module cannot read (a value over its field limit) is a
    400 naming the line."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        yield from _contacts(reader)
    except csv.Error as exc:
        raise BadRequest(f"CSV line {reader.reader.line_num}: {exc}") from None


def _contacts(reader: csv.DictReader[str]) -> Iterator[tuple[str, dict[str, object]]]:
    header = reader.fieldnames or []
    if "destination" not in header:
        raise BadRequest("the CSV header must name a destination column")
    for line, row in enumerate(reader, start=2):
        if None in row:
            raise BadRequest(f"CSV line {line}: more values than header columns")
        item: dict[str, object] = {
            "destination": row.get("destination"),
            "variables": {
                k: v for k, v in row.items() if k not in CONTACT_FIELDS and v not in (None, "")
            },
        }
        for optional in ("name", "timezone"):
            if row.get(optional):
                item[optional] = row[optional]
        yield f"CSV line {line}", item
        if line - 1 > MAX_CONTACTS:  # the rows so far (the header is line 1)
            raise BadRequest(f"at most {MAX_CONTACTS} contacts per request")


__all__ = [
    "CampaignRequest",
    "ContactRequest",
    "contact_request",
    "contacts_csv",
]
