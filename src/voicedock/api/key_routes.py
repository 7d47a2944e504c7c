"""``/api-keys``: an organization's API keys, managed with an admin key.

List (never the secrets), create (the secret is in the answer, once), rename, revoke. The auth
middleware lets only admin keys (or an admin key's console session) reach these routes
(``scope``).
"""

from __future__ import annotations

from aiohttp import web

from voicedock.api.api_keys import MAX_NAME, add_api_key, rename_api_key, revoke_api_key
from voicedock.api.resources import Caller, Create, Delete, Listing, Patch, Reply, Resource, mount
from voicedock.api.serialize import api_key_json
from voicedock.calls import fields
from voicedock.domain.records import ApiKey, KeyScope

routes = web.RouteTableDef()
SCOPES = tuple(scope.value for scope in KeyScope)


def parse_new_key(_caller: Caller, body: object) -> tuple[str, KeyScope]:
    """``{"name"?, "scope"?}``: the new key's name and scope (``full`` by default)."""
    obj = fields.require_object(body)
    fields.reject_unknown(obj, ("name", "scope"))
    name = fields.text(obj, "name", max_len=MAX_NAME, multiline=False) or ""
    return name, KeyScope(fields.choice(obj, "scope", SCOPES, KeyScope.FULL.value))


def parse_rename(_caller: Caller, _key: ApiKey, body: object) -> str:
    """``{"name"}``: the key's new name."""
    obj = fields.require_object(body)
    fields.reject_unknown(obj, ("name",))
    return fields.text(obj, "name", max_len=MAX_NAME, multiline=False, required=True) or ""


async def _add(caller: Caller, new: tuple[str, KeyScope]) -> tuple[str, ApiKey]:
    return await add_api_key(caller.service.store, caller.organization_id, *new)


def _issued(_new: object, issued: tuple[str, ApiKey]) -> Reply:
    secret, key = issued
    return Reply({**api_key_json(key), "key": secret}, status=201)


async def _rename(caller: Caller, key: ApiKey, name: str) -> ApiKey:
    return await rename_api_key(caller.service.store, key, name)


async def _revoke(caller: Caller, key: ApiKey) -> ApiKey:
    """Revoke at once: later requests, open event streams and console sessions of the key
    are refused. The key stays listed, with ``revoked_at``."""
    return await revoke_api_key(caller.service.store, key)


async def _list(caller: Caller) -> list[ApiKey]:
    return await caller.service.store.list_api_keys(caller.organization_id)


async def _lookup(caller: Caller, key_id: str) -> ApiKey | None:
    return await caller.service.store.get_api_key(caller.organization_id, key_id)


API_KEYS: Resource[ApiKey] = Resource(
    path="/api-keys",
    plural="api_keys",
    noun="API key",
    title="API key not found",
    scope=KeyScope.ADMIN,
    lookup=_lookup,
    serialize=api_key_json,
    list=Listing(run=_list),
    create=Create(parse=parse_new_key, run=_add, reply=_issued),
    patch=Patch(parse=parse_rename, run=_rename),
    delete=Delete(run=_revoke, reply=lambda key: Reply(api_key_json(key))),
)
RESOURCES = (API_KEYS,)
mount(routes, *RESOURCES)
