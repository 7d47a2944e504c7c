"""``/api-keys``: an organization's API keys, managed with an admin key.

List (never the secrets), create (the secret is in the answer, once), rename, revoke. The auth
middleware lets only admin keys (or an admin key's console session) reach these routes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from voicedock.api.api_keys import MAX_NAME, add_api_key, rename_api_key, revoke_api_key
from voicedock.api.body import read_json
from voicedock.api.keys import SERVICE
from voicedock.api.middleware import organization_of
from voicedock.api.serialize import api_key_json
from voicedock.calls import fields
from voicedock.domain.records import ApiKey, KeyScope
from voicedock.errors import NotFound
from voicedock.validation import is_token

routes = web.RouteTableDef()
SCOPES = tuple(scope.value for scope in KeyScope)


async def _body(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    max_bytes = request.app[SERVICE].settings.server.max_body_bytes
    obj = fields.require_object(await read_json(request, max_bytes))
    fields.reject_unknown(obj, allowed)
    return obj


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
    return web.json_response({"api_keys": [api_key_json(k) for k in keys]})


@routes.post("/api-keys")
async def create_key(request: web.Request) -> web.Response:
    obj = await _body(request, ("name", "scope"))
    name = fields.text(obj, "name", max_len=MAX_NAME, multiline=False) or ""
    scope = KeyScope(fields.choice(obj, "scope", SCOPES, KeyScope.FULL.value))
    store = request.app[SERVICE].store
    secret, key = await add_api_key(store, organization_of(request), name, scope)
    return web.json_response({**api_key_json(key), "key": secret}, status=201)


@routes.get("/api-keys/{id}")
async def get_key(request: web.Request) -> web.Response:
    return web.json_response(api_key_json(await _key(request)))


@routes.patch("/api-keys/{id}")
async def rename_key(request: web.Request) -> web.Response:
    obj = await _body(request, ("name",))
    name = fields.text(obj, "name", max_len=MAX_NAME, multiline=False, required=True) or ""
    key = await rename_api_key(request.app[SERVICE].store, await _key(request), name)
    return web.json_response(api_key_json(key))


@routes.delete("/api-keys/{id}")
async def revoke_key(request: web.Request) -> web.Response:
    """Revoke at once: later requests, open event streams and console sessions of the key
    are refused. The key stays listed, with ``revoked_at``."""
    key = await revoke_api_key(request.app[SERVICE].store, await _key(request))
    return web.json_response(api_key_json(key))
