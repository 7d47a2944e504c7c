"""``/webhooks``: an organization's webhook endpoints (create, list, get, delete).

The signing secret is generated here and returned once, in the creation response; later reads
never show it. A URL the SSRF policy refuses (loopback, private, link-local, the PBX itself,
credentials in the URL, ...) is ``400 Webhook URL refused`` and nothing is stored; the worker
checks it again before every delivery. An ``assistant_id`` the organization does not have is
``422 Unknown assistant``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aiohttp import web

from voicedock.api.audit import Audited
from voicedock.api.models.base import parse
from voicedock.api.models.webhooks import MAX_URL_LENGTH, Webhook, WebhookCreate, WebhookCreated
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
from voicedock.calls import json_readers
from voicedock.domain.records import utcnow
from voicedock.domain.webhooks import WebhookEndpoint, generate_secret
from voicedock.errors import BadRequest, Conflict, Unprocessable, UnsafeUrl

routes = web.RouteTableDef()

# Every endpoint multiplies each call event into a delivery: keep the fan-out bounded.
MAX_ENDPOINTS_PER_ORGANIZATION = 20


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    """A checked ``POST /webhooks`` body."""

    url: str
    assistant_id: str | None
    event_types: list[str]


def parse_endpoint(_caller: Caller, obj: object) -> NewEndpoint:
    body = parse(obj, WebhookCreate)
    # One line of text (the model bounds its length): no control characters.
    url = json_readers.check_text(body.url, "url", max_len=MAX_URL_LENGTH, line=True)
    return NewEndpoint(url, body.assistant_id, body.event_type_values())


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
        raise BadRequest(str(exc), error="Webhook URL refused") from None
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
        await caller.record(tx, endpoint.id)
    return endpoint


async def _lookup(caller: Caller, endpoint_id: str) -> WebhookEndpoint | None:
    endpoints = await caller.store.list_webhook_endpoints(caller.organization_id)
    return next((e for e in endpoints if e.id == endpoint_id), None)


WEBHOOKS: Resource[WebhookEndpoint] = Resource(
    path="/webhooks",
    noun="webhook endpoint",
    title="Webhook not found",
    lookup=_lookup,
    serialize=Webhook.of,
    list=Listing(run=lambda c: c.store.list_webhook_endpoints(c.organization_id)),
    # The signing secret is in the creation's answer alone.
    create=Create(
        parse=parse_endpoint,
        run=_create,
        reply=created(WebhookCreated.of_new),
    ),
    delete=Delete(run=stored(lambda tx, e: tx.delete_webhook_endpoint(e.organization_id, e.id))),
    audit=Audited("webhook"),
)
RESOURCES = (WEBHOOKS,)
mount(routes, *RESOURCES)
