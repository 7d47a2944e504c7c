"""``/audit-events``: the organization's audit trail (docs/privacy.md), admin keys only."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.base import Reply, of_record
from voicedock.api.models.calls import Cursor, PageQuery, Pagination
from voicedock.api.models.field_types import Time
from voicedock.api.models.operations import Schema, query_operation
from voicedock.domain.audit import AuditEvent as AuditRecord

_Word = Annotated[str, Meta(min_length=1, max_length=200)]
_Moment = Annotated[
    str,
    Meta(
        extra_json_schema={"format": "date-time"},
        description="ISO 8601 date-time (UTC unless it names its offset); exclusive",
    ),
]


class AuditEvent(Reply, kw_only=True):
    """One recorded action: who (an API key, or a console session signed in with it), what,
    to which resource, when, from which address (masked: an IPv4 address's last octet zeroed,
    an IPv6 address cut to its /48)."""

    SCHEMA: ClassVar[Schema] = {"additionalProperties": False}

    id: str
    actor: Annotated[
        str,
        Meta(
            description="The API key's id (a console session acts with it); for `operator`, "
            "the local account that ran the node's `voicedock keys` command"
        ),
    ]
    actor_kind: Literal["api_key", "console_session", "operator"]
    console_session: Annotated[
        str | None, Meta(description="The console session's short id, when it acted")
    ]
    action: Annotated[str, Meta(description="<resource type>.<what happened>")]
    resource_type: str
    resource_id: str | None
    address: Annotated[str | None, Meta(description="The client's address, masked")]
    detail: Annotated[
        dict[str, str] | None,
        Meta(description="A few words about the action (a transfer's mode, an export's format)"),
    ]
    created_at: Time

    @classmethod
    def of(cls, event: AuditRecord) -> AuditEvent:
        return of_record(cls, event, actor_kind=event.actor_kind.value)


class AuditEventList(Reply, kw_only=True):
    audit_events: list[AuditEvent]
    pagination: Pagination
    next_cursor: str | None = None


class AuditEventListQuery(PageQuery, kw_only=True):
    """``GET /audit-events``'s query: newest first, each filter exact."""

    actor: _Word | UnsetType = UNSET
    action: _Word | UnsetType = UNSET
    resource_type: _Word | UnsetType = UNSET
    resource_id: _Word | UnsetType = UNSET
    created_after: _Moment | UnsetType = UNSET
    created_before: _Moment | UnsetType = UNSET
    cursor: Cursor | UnsetType = UNSET


PATHS: dict[str, Schema] = {
    "/audit-events": {
        "get": query_operation(
            "List the organization's audit events, newest first (admin keys)",
            AuditEventList,
            AuditEventListQuery,
            "400 401 403",
            description="Changes to assistants, tool and analysis templates, webhooks, API keys "
            "and provider keys; live listen, whisper and take over; recording downloads, usage "
            "exports and console sign-ins. Appended in the transaction of the change they "
            "record; kept [retention] audit_days.",
        ),
    },
}
MODELS = (AuditEvent, AuditEventList, AuditEventListQuery)
