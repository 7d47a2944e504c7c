"""``/campaigns`` (docs/campaigns.md) and the organization's ``/do-not-call`` list."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from zoneinfo import available_timezones

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.assistant_choice import assistant_choice
from voicedock.api.models.assistant_versions import TrafficShareBody
from voicedock.api.models.assistants import TrafficShare as TrafficShareReply
from voicedock.api.models.base import Body, Reply, of_record, parse
from voicedock.api.models.calls import (
    RING_TIMEOUT,
    NamesAssistant,
    PageQuery,
    Pagination,
    RingTimeout,
)
from voicedock.api.models.field_types import (
    E164,
    Destination,
    Id,
    Time,
    Variables,
    said_as_integer,
    said_as_text,
    text,
)
from voicedock.api.models.operations import Schema, csv_body, operation, query_operation
from voicedock.api.models.refusals import JSON_OBJECT, Refusal, refusal
from voicedock.calls.campaigns.request import (
    MAX_CONCURRENT,
    MAX_CONTACTS,
    CampaignRequest,
    ContactRequest,
    contact_request,
    contacts_csv,
)
from voicedock.calls.campaigns.retries import (
    MAX_ATTEMPTS,
    MAX_BACKOFF_SECONDS,
    RETRYABLE,
    stored_retries,
)
from voicedock.calls.campaigns.window import stored_window, zone
from voicedock.calls.outbound.request import RING_TIMEOUT_DEFAULT
from voicedock.domain import campaigns as domain
from voicedock.domain.campaigns import Campaign as CampaignRecord
from voicedock.domain.campaigns import CampaignContact as ContactRecord
from voicedock.domain.campaigns import CampaignProgress, CampaignStatus, ContactState
from voicedock.domain.json import JsonObject
from voicedock.domain.timestamps import iso
from voicedock.domain.traffic_split import SHARES
from voicedock.errors import BadRequest

# mon ... sun, in any case (calls/campaigns/window.py lowers them).
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAME = "^(" + "|".join("".join(f"[{c.upper()}{c}]" for c in day) for day in _DAYS) + ")$"
HhMm = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
# An IANA time zone name, one of the node's (the TimeZone schema lists them).
# (calls/campaigns/window.py zone() checks the name.)
TimeZone = Annotated[object, Meta(extra_json_schema={"$ref": "#/components/schemas/TimeZone"})]
SCHEMAS: dict[str, Schema] = {
    "TimeZone": {
        "enum": sorted(available_timezones()),
        "description": "An IANA time zone name (the node's time zone database).",
    }
}


_TIME = refusal("{field} must be a time HH:MM (24-hour)")
_DAY = refusal("calling_window.days: each day is 1-7 (Monday = 1) or mon, tue, ... sun")


class CallingWindow(Body, kw_only=True):
    days: (
        Annotated[
            list[
                Annotated[
                    Annotated[int, Meta(ge=1, le=7)] | Annotated[str, Meta(pattern=_DAY_NAME)],
                    _DAY,
                ]
            ],
            Meta(
                min_length=1,
                description="ISO weekdays (1 = Monday) or mon, tue, ... sun; default every day.",
            ),
            refusal("{field} must be a non-empty list of weekdays"),
        ]
        | UnsetType
    ) = UNSET
    start: Annotated[HhMm, _TIME]
    end: Annotated[
        str,
        Meta(
            pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
            description="Excluded; before start: the window spans midnight; equal to start: "
            "400 (an empty window).",
        ),
        _TIME,
    ]

    def stored(self) -> JsonObject:
        """The window as a campaign stores it (400 when it leaves no time to call)."""
        days = range(1, 8) if self.days is UNSET else self.days
        return stored_window(days, self.start, self.end)


def _count(low: int, high: int) -> Meta:
    """A retry rule's number: ``must be an integer``, ``must be low-high``."""

    def read(value: object, field: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{field} must be an integer")
        if not low <= value <= high:
            raise BadRequest(f"{field} must be {low}-{high}")

    return refusal(reader=read)


class RetryRule(Body, kw_only=True):
    max_attempts: (
        Annotated[int, Meta(ge=1, le=MAX_ATTEMPTS), _count(1, MAX_ATTEMPTS)] | UnsetType
    ) = UNSET
    backoff_seconds: (
        Annotated[int, Meta(ge=0, le=MAX_BACKOFF_SECONDS), _count(0, MAX_BACKOFF_SECONDS)]
        | UnsetType
    ) = UNSET

    def rule(self) -> domain.RetryRule:
        return domain.RetryRule(self.max_attempts or 1, self.backoff_seconds or 0)


Retries = Annotated[
    dict[
        str,
        Annotated[
            RetryRule,
            refusal("{field} must be {{max_attempts, backoff_seconds}}", deep=False, unknown=True),
        ],
    ],
    Meta(
        description="Outcome -> rule: up to max_attempts calls in all, backoff_seconds apart. "
        "An outcome without a rule is final after one call; answered always is.",
        extra_json_schema={"propertyNames": {"enum": list(RETRYABLE)}},
    ),
    refusal("{field} must be an object: outcome -> {{max_attempts, backoff_seconds}}", deep=False),
]


class ContactIn(Body, kw_only=True):
    destination: Annotated[Destination, refusal("{field} must be E.164 (+ and 7-15 digits)")]
    name: (
        Annotated[
            str,
            Meta(max_length=200),
            refusal("{field} must be a string of at most 200 characters"),
        ]
        | None
    ) = None
    timezone: Annotated[TimeZone | None, Meta(description="Default: the campaign's.")] = None
    variables: Variables | UnsetType = UNSET

    def contact(self, where: str) -> ContactRequest:
        """The contact (``where``: how a 400 names it, ``contacts[0]``)."""
        variables = None if self.variables is UNSET else self.variables
        return contact_request(where, self.destination, self.name, self.timezone, variables)


# The contacts of a body, each named by its place in the list when refused.
_CONTACTS = refusal(
    "{field} must be a list of contacts",
    shorter="{field} must hold at least one contact",
    longer=f"{{field}}: at most {MAX_CONTACTS} contacts per request",
)
Contacts = Annotated[
    list[Annotated[ContactIn, refusal("{field} must be an object")]],
    Meta(max_length=MAX_CONTACTS),
    _CONTACTS,
]


def contacts_of(contacts: list[ContactIn]) -> tuple[ContactRequest, ...]:
    """A JSON body's contacts."""
    return tuple(c.contact(f"contacts[{i}]") for i, c in enumerate(contacts))


def csv_contacts(text: str) -> tuple[ContactRequest, ...]:
    """A CSV body's contacts, each row read as a JSON contact is."""
    return tuple(parse(item, ContactIn, line).contact(line) for line, item in contacts_csv(text))


class CampaignCreate(NamesAssistant, kw_only=True):
    # A campaign names its assistant as POST /calls/outbound does (without the aliases).
    SCHEMA: ClassVar[Schema] = assistant_choice(
        ("assistant_id",), ("assistant",), ("assistant_override",), ("squad_id",)
    )

    REFUSAL: ClassVar[Refusal | None] = JSON_OBJECT

    name: Annotated[str, text(200, line=True), said_as_text(200, line=True, required=True)]
    number_ids: (
        Annotated[
            list[Id],
            Meta(description="Caller numbers; empty: the organization's pool."),
            refusal("{field} must be a list of phone number ids"),
        ]
        | UnsetType
    ) = UNSET
    contacts: Annotated[Contacts, Meta(min_length=1), _CONTACTS]
    max_concurrent: (
        Annotated[
            int,
            Meta(
                ge=0,
                le=MAX_CONCURRENT,
                description="Calls of this campaign at once; 0 (the default): only the trunk's "
                "and the organization's limits.",
            ),
            said_as_integer(0, MAX_CONCURRENT),
        ]
        | UnsetType
        | None
    ) = UNSET
    ring_timeout_seconds: (
        Annotated[RingTimeout, Meta(extra_json_schema=RING_TIMEOUT)] | UnsetType | None
    ) = UNSET
    calling_window: (
        Annotated[
            CallingWindow,
            refusal("{field} must be an object with days, start and end", unknown=True),
        ]
        | UnsetType
        | None
    ) = UNSET
    timezone: Annotated[TimeZone, Meta(extra_json_schema={"default": "UTC"})] | UnsetType = UNSET
    retries: Retries | UnsetType = UNSET
    traffic_split: (
        Annotated[
            list[TrafficShareBody],
            Meta(
                min_length=SHARES[0],
                max_length=SHARES[1],
                description="Versions of the saved assistant (assistant_id) the calls are "
                "split to by weight, each contact always the same one; omitted: the "
                "assistant's own traffic split, if it has one (docs/assistant-versions.md).",
            ),
        ]
        | UnsetType
    ) = UNSET

    def request(self) -> CampaignRequest:
        """The campaign this body asks for (what no schema states checked: its contacts'
        time zones and its own, which assistant, the window, the retried outcomes)."""
        contacts = contacts_of(self.contacts)
        assistant = self._assistant_request(contacts[0].destination, [])
        timezone = zone("UTC" if self.timezone is UNSET else self.timezone).key
        window = self.calling_window
        return CampaignRequest(
            name=self.name,
            assistant=assistant,
            number_ids=tuple(dict.fromkeys(self.number_ids or ())),
            contacts=contacts,
            max_concurrent=self.max_concurrent or 0,
            ring_timeout_seconds=self.ring_timeout_seconds or RING_TIMEOUT_DEFAULT,
            calling_window=None if window is None or window is UNSET else window.stored(),
            timezone=timezone,
            retries=stored_retries({k: r.rule() for k, r in (self.retries or {}).items()}),
            traffic_split=None
            if isinstance(self.traffic_split, UnsetType)
            else tuple(s.share() for s in self.traffic_split),
        )


class Counts(Reply, kw_only=True):
    SCHEMA: ClassVar[Schema] = {"additionalProperties": False}

    total: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]


class Campaign(Reply, kw_only=True):
    id: str
    name: str
    status: CampaignStatus
    assistant_id: str | None = None
    assistant_version: Annotated[
        int | None,
        Meta(description="The saved assistant's version its calls run (null: inline, a split)"),
    ] = None
    traffic_split: Annotated[
        list[TrafficShareReply] | None,
        Meta(description="The versions its calls are split to by the contact's number"),
    ] = None
    agent_name: str | None = None
    number_ids: list[str] = msgspec.field(default_factory=list)
    max_concurrent: int = 0
    ring_timeout_seconds: int = RING_TIMEOUT_DEFAULT
    calling_window: CallingWindow | None = None
    timezone: str = "UTC"
    retries: Retries = msgspec.field(default_factory=dict)
    created_at: Time = None
    updated_at: Time = None
    started_at: Time = None
    finished_at: Time = None
    progress: Counts | UnsetType = UNSET

    @classmethod
    def of(cls, campaign: CampaignRecord, progress: CampaignProgress | None = None) -> Campaign:
        body: dict[str, object] = {
            "id": campaign.id,
            "name": campaign.name,
            "status": campaign.status,
            "assistant_id": campaign.assistant_id,
            "assistant_version": None if campaign.split else campaign.assistant_version,
            "traffic_split": None
            if not campaign.split
            else [{"version": v.version, "weight": v.weight} for v in campaign.split],
            "agent_name": campaign.agent_name,
            "number_ids": campaign.number_ids,
            "max_concurrent": campaign.max_concurrent,
            "ring_timeout_seconds": campaign.ring_timeout_seconds,
            "calling_window": campaign.calling_window,
            "timezone": campaign.timezone,
            "retries": campaign.retries,
            "created_at": iso(campaign.created_at),
            "updated_at": iso(campaign.updated_at),
            "started_at": iso(campaign.started_at),
            "finished_at": iso(campaign.finished_at),
        }
        if progress is not None:
            body["progress"] = {
                "total": progress.total,
                "by_state": progress.by_state,
                "by_outcome": progress.by_outcome,
            }
        return msgspec.convert(body, cls)


class CampaignList(Reply, kw_only=True):
    SCHEMA: ClassVar[Schema] = {"additionalProperties": False}

    campaigns: list[Campaign]
    pagination: Pagination


class CampaignContact(Reply, kw_only=True):
    id: str
    destination: E164
    name: str | None = None
    timezone: str | None = None
    variables: dict[str, Any] = msgspec.field(default_factory=dict)
    state: ContactState
    outcome: Annotated[
        str | None,
        Meta(
            description="answered, a call error (busy, no-answer, ...), do-not-call, refused "
            "(call policy), spend-limit-reached (the organization's monthly spending limit, "
            "docs/billing.md) or cancelled; while pending: the last call's."
        ),
    ] = None
    attempts: int
    next_attempt_at: Time = None
    call_id: str | None = None
    updated_at: Time = None

    @classmethod
    def of(cls, contact: ContactRecord) -> CampaignContact:
        pending = contact.state is ContactState.PENDING
        return of_record(
            cls, contact, next_attempt_at=iso(contact.next_attempt_at) if pending else None
        )


class CampaignContactList(Reply, kw_only=True):
    SCHEMA: ClassVar[Schema] = {"additionalProperties": False}

    contacts: list[CampaignContact]
    pagination: Pagination


class CampaignContactsAdd(Body, kw_only=True):
    REFUSAL: ClassVar[Refusal | None] = JSON_OBJECT

    contacts: Contacts


class ContactsAdded(Reply, kw_only=True):
    success: bool
    added: int


class CampaignListQuery(PageQuery, kw_only=True):
    """``GET /campaigns``'s query."""


class ContactListQuery(CampaignListQuery, kw_only=True):
    state: ContactState | UnsetType = UNSET


def _move(summary: str) -> Schema:
    return {"post": operation(summary, ("200", Campaign), errors="401 404 409")}


def _add_contacts() -> Schema:
    op = operation(
        "Add contacts (JSON, or CSV with a header: destination, name, timezone, variables)",
        ("201", ContactsAdded),
        body=CampaignContactsAdd,
        errors="400 401 403 404 409 413",
    )
    op["requestBody"]["content"]["text/csv"] = csv_body(
        "A header row naming destination (required), name, timezone and any variable columns, "
        "then one contact a row.",
        # The simplest form; a header may also name timezone and variable columns.
        pattern=r"^destination(,name)?\r?\n(\+[1-9][0-9]{6,14}\r?\n)*$",
    )
    return op


PATHS: dict[str, Schema] = {
    "/campaigns": {
        "get": query_operation(
            "List all campaigns",
            CampaignList,
            CampaignListQuery,
        ),
        "post": operation(
            "Create a campaign (it starts at once)",
            ("201", Campaign),
            body=CampaignCreate,
            errors="400 401 403 404 413 422",
        ),
    },
    "/campaigns/{id}": {
        "get": operation(
            "Get a campaign with its progress",
            ("200", Campaign),
            errors="401 404",
        )
    },
    "/campaigns/{id}/contacts": {
        "get": query_operation(
            "List a campaign's contacts",
            CampaignContactList,
            ContactListQuery,
            "400 401 404",
        ),
        "post": _add_contacts(),
    },
    "/campaigns/{id}/pause": _move("Pause a campaign: no new calls (calls in progress go on)"),
    "/campaigns/{id}/resume": _move("Resume a paused campaign"),
    "/campaigns/{id}/cancel": _move("Cancel a campaign: its waiting contacts end cancelled"),
}
MODELS = (
    CampaignCreate,
    Campaign,
    CampaignList,
    CampaignContact,
    CampaignContactList,
    CampaignContactsAdd,
    ContactsAdded,
    CampaignListQuery,
    ContactListQuery,
)
