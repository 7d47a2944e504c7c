"""``/api-keys``: an organization's API keys, managed with an admin key.

List (never the secrets), create (the secret is in the answer, once), rename, revoke. The auth
middleware lets only admin keys (or an admin key's console session) reach these routes
(``scope``).
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from voicedock.api.api_keys import NewApiKey, add_api_key, rename_api_key, revoke_api_key
from voicedock.api.audit import Audited
from voicedock.api.models.api_keys import ApiKey as ApiKeyReply
from voicedock.api.models.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyUpdate
from voicedock.api.models.base import parse
from voicedock.api.resources import Caller, Create, Delete, Listing, Patch, Reply, Resource, mount
from voicedock.domain.records import ApiKey, KeyScope

routes = web.RouteTableDef()


def parse_new_key(_caller: Caller, body: object) -> NewApiKey:
    """``{"name"?, "scope"?}``: the new key's name and scope (``full`` by default)."""
    new = parse(body, ApiKeyCreate)
    return NewApiKey(new.name or "", new.scope or KeyScope.FULL)


def parse_rename(_caller: Caller, key: ApiKey, body: object) -> ApiKey:
    """``{"name"}``: the key's new name."""
    return dataclasses.replace(key, name=parse(body, ApiKeyUpdate).name)


async def _add(caller: Caller, new: NewApiKey) -> tuple[str, ApiKey]:
    return await add_api_key(caller.store, caller.organization_id, new, caller.doing)


def _issued(_new: object, issued: tuple[str, ApiKey]) -> Reply:
    secret, key = issued
    return Reply(ApiKeyCreated.of_new(key, secret), status=201)


API_KEYS: Resource[ApiKey] = Resource(
    path="/api-keys",
    noun="API key",
    scope=KeyScope.ADMIN,
    lookup=lambda c, key_id: c.store.get_api_key(c.organization_id, key_id),
    serialize=ApiKeyReply.of,
    list=Listing(run=lambda c: c.store.list_api_keys(c.organization_id)),
    create=Create(parse=parse_new_key, run=_add, reply=_issued),
    patch=Patch(
        parse=parse_rename, run=lambda c, key: rename_api_key(c.store, key, key.name, c.doing)
    ),
    # Revoked at once: later requests, open event streams and console sessions of the key are
    # refused. The key stays listed, with ``revoked_at``.
    delete=Delete(
        run=lambda c, key: revoke_api_key(c.store, key, c.doing),
        reply=lambda key: Reply(ApiKeyReply.of(key)),
    ),
    audit=Audited("api_key", updated="renamed", deleted="revoked"),
)
RESOURCES = (API_KEYS,)
mount(routes, *RESOURCES)
