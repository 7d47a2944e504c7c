"""``/webhooks``: an organization's webhook endpoints (create, list, get, delete).

The signing secret is generated here and returned once, in the creation response; later reads
never show it. A URL the SSRF policy refuses (loopback, private, link-local, the PBX itself,
credentials in the URL, ...) is ``422`` and nothing is stored; the worker checks it again
before every delivery.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Listing,
    Resource,
    created,
    mount,
    stored,
)
from voicedock.calls import fields
from voicedock.domain.records import utcnow
from voicedock.domain.webhooks import EventType, WebhookEndpoint, generate_secret
from voicedock.errors import BadRequest, Conflict, Unprocessable, UnsafeUrl
from voicedock.webhooks.events import format_timestamp

routes = web.RouteTableDef()

ENDPOINT_FIELDS = ("url", "assistant_id", "event_types")
EVENT_TYPES = tuple(t.value for t in EventType)
MAX_URL_LENGTH = 2000
# Every endpoint multiplies each call event into a delivery: keep the fan-out bounded.
MAX_ENDPOINTS_PER_ORGANIZATION = 20


def endpoint_json(endpoint: WebhookEndpoint, *, secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "assistant_id": endpoint.assistant_id,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "created_at": format_timestamp(endpoint.created_at),
    }
    if secret:
        body["secret"] = endpoint.secret
    return body


def parse_event_types(obj: dict[str, Any]) -> list[str]:
    value = obj.get("event_types")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest("event_types must be a list of strings")
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise BadRequest(f"event_types: unknown type(s) {', '.join(unknown)}")
    return sorted(set(value), key=EVENT_TYPES.index)


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    """A checked ``POST /webhooks`` body."""

    url: str
    assistant_id: str | None
    event_types: list[str]


def parse_endpoint(_caller: Caller, body: object) -> NewEndpoint:
    obj = fields.require_object(body)
    fields.reject_unknown(obj, ENDPOINT_FIELDS)
    url = fields.text(obj, "url", required=True, max_len=MAX_URL_LENGTH, multiline=False)
    assert url is not None
    event_types = parse_event_types(obj)
    return NewEndpoint(url, fields.identifier(obj, "assistant_id"), event_types)


async def _create(caller: Caller, new: NewEndpoint) -> WebhookEndpoint:
    service, org_id = caller.service, caller.organization_id
    if (
        new.assistant_id is not None
        and await service.store.get_assistant(org_id, new.assistant_id) is None
    ):
        raise Unprocessable("no assistant with this id", error="Unknown assistant")
    if len(await service.store.list_webhook_endpoints(org_id)) >= MAX_ENDPOINTS_PER_ORGANIZATION:
        raise Conflict(
            f"an organization can have at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhook "
            "endpoints; delete one first",
            error="Too many webhooks",
        )
    try:
        await service.webhooks.check_url(new.url)
    except UnsafeUrl as exc:
        raise Unprocessable(str(exc), error="Webhook URL refused") from None
    endpoint = WebhookEndpoint(
        id=f"we_{uuid.uuid4().hex}",
        organization_id=org_id,
        url=new.url,
        secret=generate_secret(),
        assistant_id=new.assistant_id,
        event_types=new.event_types,
        created_at=utcnow(),
    )
    async with service.store.transaction() as tx:
        await tx.insert_webhook_endpoint(endpoint)
    return endpoint


async def _lookup(caller: Caller, endpoint_id: str) -> WebhookEndpoint | None:
    endpoints = await caller.store.list_webhook_endpoints(caller.organization_id)
    return next((e for e in endpoints if e.id == endpoint_id), None)


WEBHOOKS: Resource[WebhookEndpoint] = Resource(
    path="/webhooks",
    noun="webhook endpoint",
    title="Webhook not found",
    lookup=_lookup,
    serialize=endpoint_json,
    list=Listing(run=lambda c: c.store.list_webhook_endpoints(c.organization_id)),
    # The signing secret is in the creation's answer alone.
    create=Create(
        parse=parse_endpoint,
        run=_create,
        reply=created(lambda endpoint: endpoint_json(endpoint, secret=True)),
    ),
    delete=Delete(run=stored(lambda tx, e: tx.delete_webhook_endpoint(e.organization_id, e.id))),
)
RESOURCES = (WEBHOOKS,)
mount(routes, *RESOURCES)
