"""``GET /audit-events``: the organization's audit trail (``api/audit.py`` records it), for
admin keys (and an admin key's console session): newest first, paged by ``limit`` and
``offset`` or by ``cursor``, filtered by ``actor``, ``action``, ``resource_type``,
``resource_id``, ``created_after`` and ``created_before``. Only the caller's organization's
events: another organization's key sees none of them."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from voicedock.api.body import decode_cursor, encode_cursor, query_datetime
from voicedock.api.models.audit_events import AuditEvent as AuditEventReply
from voicedock.api.models.audit_events import AuditEventListQuery
from voicedock.api.models.base import parse_query
from voicedock.api.resources import Caller, Listed, Page, Paged, Resource, mount
from voicedock.domain.audit import AuditEvent
from voicedock.domain.records import KeyScope
from voicedock.store.base import AuditQuery, CallCursor, TimeRange

routes = web.RouteTableDef()

FILTERS = ("actor", "action", "resource_type", "resource_id")
PARAMS = frozenset({*FILTERS, "created_after", "created_before", "cursor"})


def _check(q: Mapping[str, str]) -> None:
    parse_query(q, AuditEventListQuery)
    query_datetime(q.get("created_after"), "created_after")
    query_datetime(q.get("created_before"), "created_before")


async def _list(caller: Caller, page: Page) -> Listed[AuditEvent]:
    q = page.query
    query = AuditQuery(
        organization_id=caller.organization_id,
        limit=page.limit,
        offset=page.offset,
        **{name: q.get(name) for name in FILTERS},
        created=TimeRange(
            query_datetime(q.get("created_after"), "created_after"),
            query_datetime(q.get("created_before"), "created_before"),
        ),
        after=decode_cursor(q.get("cursor")),
    )
    found = await caller.store.list_audit_events(query)
    return Listed(found.events, found.total)


def _cursor_of(event: AuditEvent) -> str:
    """``next_cursor``: a full page's last event (its creation time and seq)."""
    return encode_cursor(CallCursor(event.created_at, event.seq))


AUDIT_EVENTS: Resource[AuditEvent] = Resource(
    path="/audit-events",
    noun="audit event",
    scope=KeyScope.ADMIN,
    serialize=AuditEventReply.of,
    list=Paged(run=_list, params=PARAMS, check=_check, cursor=_cursor_of),
    get=False,
)
RESOURCES = (AUDIT_EVENTS,)
mount(routes, *RESOURCES)
