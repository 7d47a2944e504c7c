"""``/webhooks``: an organization's webhook endpoints (create, list, get, delete).

The signing secret is generated here and returned once, in the creation response; later reads
never show it. A URL the SSRF policy refuses (loopback, private, link-local, the PBX itself,
credentials in the URL, ...) is ``422`` and nothing is stored; the worker checks it again
before every delivery.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.base import parse, reply
from voicedock.api.models.webhooks import (
    MAX_URL_LENGTH,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
)
from voicedock.calls import fields
from voicedock.domain.records import utcnow
from voicedock.domain.webhooks import WebhookEndpoint, generate_secret
from voicedock.errors import Conflict, NotFound, Unprocessable, UnsafeUrl
from voicedock.validation import is_token

routes = web.RouteTableDef()

# Every endpoint multiplies each call event into a delivery: keep the fan-out bounded.
MAX_ENDPOINTS_PER_ORGANIZATION = 20


async def _endpoint(request: web.Request) -> WebhookEndpoint:
    endpoint_id = request.match_info["id"]
    if is_token(endpoint_id):
        store = request.app[SERVICE].store
        for endpoint in await store.list_webhook_endpoints(organization_of(request)):
            if endpoint.id == endpoint_id:
                return endpoint
    raise NotFound("no webhook endpoint with this id", error="Webhook not found")


@routes.get("/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    items = await request.app[SERVICE].store.list_webhook_endpoints(organization_of(request))
    return reply(WebhookList(webhooks=[Webhook.of(e) for e in items]))


@routes.post("/webhooks")
async def create_webhook(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    org_id = organization_of(request)
    obj = await read_json(request, service.settings.server.max_body_bytes)
    body = parse(obj, WebhookCreate)
    # One line of text (the model bounds its length): no control characters.
    url = fields.text({"url": body.url}, "url", max_len=MAX_URL_LENGTH, multiline=False) or ""
    event_types = body.event_type_values()
    assistant_id = body.assistant_id
    if assistant_id is not None and await service.store.get_assistant(org_id, assistant_id) is None:
        raise Unprocessable("no assistant with this id", error="Unknown assistant")
    if len(await service.store.list_webhook_endpoints(org_id)) >= MAX_ENDPOINTS_PER_ORGANIZATION:
        raise Conflict(
            f"an organization can have at most {MAX_ENDPOINTS_PER_ORGANIZATION} webhook "
            "endpoints; delete one first",
            error="Too many webhooks",
        )
    try:
        await service.webhooks.check_url(url)
    except UnsafeUrl as exc:
        raise Unprocessable(str(exc), error="Webhook URL refused") from None
    endpoint = WebhookEndpoint(
        id=f"we_{uuid.uuid4().hex}",
        organization_id=org_id,
        url=url,
        secret=generate_secret(),
        assistant_id=assistant_id,
        event_types=event_types,
        created_at=utcnow(),
    )
    async with service.store.transaction() as tx:
        await tx.insert_webhook_endpoint(endpoint)
    return reply(WebhookCreated.of_new(endpoint), 201)


@routes.get("/webhooks/{id}")
async def get_webhook(request: web.Request) -> web.Response:
    return reply(Webhook.of(await _endpoint(request)))


@routes.delete("/webhooks/{id}")
async def delete_webhook(request: web.Request) -> web.Response:
    endpoint = await _endpoint(request)
    async with request.app[SERVICE].store.transaction() as tx:
        await tx.delete_webhook_endpoint(endpoint.organization_id, endpoint.id)
    return web.Response(status=204)
