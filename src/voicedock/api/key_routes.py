"""``/api-keys``: an organization's API keys, managed with an admin key.

List (never the secrets), create (the secret is in the answer, once), rename, revoke. The auth
middleware lets only admin keys (or an admin key's console session) reach these routes.
"""

from __future__ import annotations

from aiohttp import web

from voicedock.api.api_keys import add_api_key, rename_api_key, revoke_api_key
from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.models.api_keys import ApiKey as ApiKeyReply
from voicedock.api.models.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyUpdate
from voicedock.api.models.base import M, parse, reply
from voicedock.domain.records import ApiKey, KeyScope
from voicedock.errors import NotFound
from voicedock.validation import is_token

routes = web.RouteTableDef()


async def _body(request: web.Request, model: type[M]) -> M:
    max_bytes = request.app[SERVICE].settings.server.max_body_bytes
    return parse(await read_json(request, max_bytes), model)


async def _key(request: web.Request) -> ApiKey:
    key_id = request.match_info["id"]
    key = None
    if is_token(key_id):
        key = await request.app[SERVICE].store.get_api_key(organization_of(request), key_id)
    if key is None:
        raise NotFound("no API key with this id", error="API key not found")
    return key


@routes.get("/api-keys")
async def list_keys(request: web.Request) -> web.Response:
    keys = await request.app[SERVICE].store.list_api_keys(organization_of(request))
    return reply(ApiKeyList(api_keys=[ApiKeyReply.of(k) for k in keys]))


@routes.post("/api-keys")
async def create_key(request: web.Request) -> web.Response:
    body = await _body(request, ApiKeyCreate)
    name = body.name or ""
    scope = body.scope or KeyScope.FULL
    store = request.app[SERVICE].store
    secret, key = await add_api_key(store, organization_of(request), name, scope)
    return reply(ApiKeyCreated.of_new(key, secret), 201)


@routes.get("/api-keys/{id}")
async def get_key(request: web.Request) -> web.Response:
    return reply(ApiKeyReply.of(await _key(request)))


@routes.patch("/api-keys/{id}")
async def rename_key(request: web.Request) -> web.Response:
    name = (await _body(request, ApiKeyUpdate)).name
    key = await rename_api_key(request.app[SERVICE].store, await _key(request), name)
    return reply(ApiKeyReply.of(key))


@routes.delete("/api-keys/{id}")
async def revoke_key(request: web.Request) -> web.Response:
    """Revoke at once: later requests, open event streams and console sessions of the key
    are refused. The key stays listed, with ``revoked_at``."""
    key = await revoke_api_key(request.app[SERVICE].store, await _key(request))
    return reply(ApiKeyReply.of(key))
