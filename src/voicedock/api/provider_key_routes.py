"""``/provider-keys``: an organization's own keys for cloud providers (bring your own key).

Create (``{"name", "provider", "api_key"}``), list and get (the key masked: ``****`` and its
last four characters), rotate (``PATCH`` with a new ``api_key``), delete (``409`` while one of
the organization's assistants references the key by name in an ``api_key_ref``). The key is
stored sealed under the operator's ``[byok]`` key (``domain/key_box.py``) and never answered
nor logged. ``[byok] mode = "off"``, or no operator key configured: ``403`` on every route.
Another organization's key is a ``404``.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.base import M, parse, reply
from voicedock.api.models.provider_keys import ProviderKey as ProviderKeyReply
from voicedock.api.models.provider_keys import (
    ProviderKeyCreate,
    ProviderKeyList,
    ProviderKeyRotate,
)
from voicedock.calls.provider_key_refs import key_box, references, sealing_context
from voicedock.domain.key_box import KeyBox
from voicedock.domain.records import ProviderKey, utcnow
from voicedock.domain.secret_fields import mask
from voicedock.errors import Conflict, Forbidden, NotFound
from voicedock.store.errors import DuplicateKeyError
from voicedock.validation import is_token

routes = web.RouteTableDef()

MAX_KEYS_PER_ORGANIZATION = 100


def _box(request: web.Request) -> KeyBox:
    byok = request.app[SERVICE].settings.byok
    box = key_box(byok) if byok.mode != "off" else None
    if box is None:
        raise Forbidden(
            "the operator does not allow organizations' own provider keys on this node",
            error="Provider keys disabled",
        )
    return box


async def _body(request: web.Request, model: type[M]) -> M:
    max_bytes = request.app[SERVICE].settings.server.max_body_bytes
    return parse(await read_json(request, max_bytes), model)


async def _key(request: web.Request) -> ProviderKey:
    _box(request)
    key_id = request.match_info["id"]
    found = None
    if is_token(key_id):
        store = request.app[SERVICE].store
        found = await store.get_provider_key(organization_of(request), key_id)
    if found is None:
        raise NotFound("no provider key with this id", error="Provider key not found")
    return found


def _seal(box: KeyBox, key: ProviderKey, secret: str) -> None:
    key.sealed = box.seal(secret, sealing_context(key.organization_id, key.id))
    key.last4 = mask(secret)[len("****") :]


@routes.get("/provider-keys")
async def list_provider_keys(request: web.Request) -> web.Response:
    _box(request)
    items = await request.app[SERVICE].store.list_provider_keys(organization_of(request))
    return reply(ProviderKeyList(provider_keys=[ProviderKeyReply.of(k) for k in items]))


@routes.post("/provider-keys")
async def create_provider_key(request: web.Request) -> web.Response:
    box = _box(request)
    body = await _body(request, ProviderKeyCreate)
    store = request.app[SERVICE].store
    org_id = organization_of(request)
    if len(await store.list_provider_keys(org_id)) >= MAX_KEYS_PER_ORGANIZATION:
        raise Conflict(f"at most {MAX_KEYS_PER_ORGANIZATION} provider keys")
    key = ProviderKey(
        id=str(uuid.uuid4()),
        organization_id=org_id,
        name=body.name,
        provider=body.provider,
        sealed="",
        last4="",
    )
    _seal(box, key, body.api_key)
    try:
        async with store.transaction() as tx:
            await tx.insert_provider_key(key)
    except DuplicateKeyError:
        raise Conflict(f"a provider key named {body.name!r} exists") from None
    return reply(ProviderKeyReply.of(key), 201)


@routes.get("/provider-keys/{id}")
async def get_provider_key(request: web.Request) -> web.Response:
    return reply(ProviderKeyReply.of(await _key(request)))


@routes.patch("/provider-keys/{id}")
async def rotate_provider_key(request: web.Request) -> web.Response:
    key = await _key(request)
    body = await _body(request, ProviderKeyRotate)
    _seal(_box(request), key, body.api_key)
    key.updated_at = utcnow()
    async with request.app[SERVICE].store.transaction() as tx:
        await tx.update_provider_key(key)
    return reply(ProviderKeyReply.of(key))


@routes.delete("/provider-keys/{id}")
async def delete_provider_key(request: web.Request) -> web.Response:
    key = await _key(request)
    store = request.app[SERVICE].store
    users = [
        a.name
        for a in await store.list_assistants(key.organization_id)
        if references(a.config, key.name)
    ]
    if users:
        raise Conflict(
            f"the provider key {key.name!r} is referenced by assistant(s): "
            + ", ".join(sorted(users)[:5])
        )
    async with store.transaction() as tx:
        await tx.delete_provider_key(key.organization_id, key.id)
    return web.Response(status=204)
