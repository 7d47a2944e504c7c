"""``/provider-keys``: an organization's own keys for cloud providers (bring your own key).

Create (``{"name", "provider", "api_key"}``), list and get (the key masked: ``****`` and its
last four characters), rotate (``PATCH`` with a new ``api_key``), delete (``409`` while one of
the organization's assistants references the key by name in an ``api_key_ref``). The key is
stored sealed under the operator's ``[byok]`` key (``domain/key_box.py``) and never answered
nor logged. ``[byok] mode = "off"``, or no operator key configured: ``403`` on every route.
Another organization's key is a ``404``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from voicedock.api.audit import Audited
from voicedock.api.models.base import parse
from voicedock.api.models.provider_keys import ProviderKey as ProviderKeyReply
from voicedock.api.models.provider_keys import ProviderKeyCreate, ProviderKeyRotate
from voicedock.api.resources import (
    Caller,
    Create,
    Delete,
    Listing,
    Patch,
    Resource,
    capped,
    created,
    mount,
    stored,
    unreferenced,
)
from voicedock.calls.assistants.key_refs import references
from voicedock.domain.key_box import KeyBox, key_box, sealing_context
from voicedock.domain.records import ProviderKey, utcnow
from voicedock.domain.secret_fields import mask
from voicedock.errors import Conflict, Forbidden
from voicedock.store.errors import DuplicateKeyError
from voicedock.validation import is_token

routes = web.RouteTableDef()

MAX_KEYS_PER_ORGANIZATION = 100


def _box(caller: Caller) -> KeyBox:
    """The operator's key box; 403 on every route while provider keys are off."""
    byok = caller.service.settings.byok
    box = key_box(byok) if byok.mode != "off" else None
    if box is None:
        raise Forbidden(
            "the operator does not allow organizations' own provider keys on this node",
            error="Provider keys disabled",
        )
    return box


async def _lookup(caller: Caller, key_id: str) -> ProviderKey | None:
    _box(caller)  # disabled before not found
    if not is_token(key_id):
        return None
    return await caller.store.get_provider_key(caller.organization_id, key_id)


async def _list(caller: Caller) -> list[ProviderKey]:
    _box(caller)
    return await caller.store.list_provider_keys(caller.organization_id)


def _sealed(box: KeyBox, key: ProviderKey, secret: str) -> ProviderKey:
    """``key`` holding ``secret`` sealed under the operator's key (and its last four)."""
    return dataclasses.replace(
        key,
        sealed=box.seal(secret, sealing_context(key.organization_id, key.id)),
        last4=mask(secret)[len("****") :],
    )


def _parse_new(caller: Caller, body: object) -> ProviderKey:
    box = _box(caller)
    new = parse(body, ProviderKeyCreate)
    key = ProviderKey(
        id=str(uuid.uuid4()),
        organization_id=caller.organization_id,
        name=new.name,
        provider=new.provider,
        sealed="",
        last4="",
    )
    return _sealed(box, key, new.api_key)


async def _count(caller: Caller) -> int:
    return len(await caller.store.list_provider_keys(caller.organization_id))


_insert: Callable[[Caller, ProviderKey], Awaitable[ProviderKey]] = capped(
    _count,
    MAX_KEYS_PER_ORGANIZATION,
    "provider keys",
    stored(lambda tx, k: tx.insert_provider_key(k)),
)


async def _create(caller: Caller, key: ProviderKey) -> ProviderKey:
    try:
        return await _insert(caller, key)
    except DuplicateKeyError:
        raise Conflict(f"a provider key named {key.name!r} exists") from None


def _parse_rotation(caller: Caller, key: ProviderKey, body: object) -> ProviderKey:
    rotated = _sealed(_box(caller), key, parse(body, ProviderKeyRotate).api_key)
    return dataclasses.replace(rotated, updated_at=utcnow())


PROVIDER_KEYS: Resource[ProviderKey] = Resource(
    path="/provider-keys",
    noun="provider key",
    lookup=_lookup,
    is_id=lambda _value: True,  # _lookup answers 403 first while provider keys are off
    serialize=ProviderKeyReply.of,
    list=Listing(run=_list),
    create=Create(parse=_parse_new, run=_create, reply=created(ProviderKeyReply.of)),
    patch=Patch(parse=_parse_rotation, run=stored(lambda tx, k: tx.update_provider_key(k))),
    delete=Delete(
        run=unreferenced(
            lambda key, config: references(config, key.name),
            lambda key: f"the provider key {key.name!r} is referenced by",
            lambda tx, k: tx.delete_provider_key(k.organization_id, k.id),
        )
    ),
    audit=Audited("provider_key", updated="rotated"),
)
RESOURCES = (PROVIDER_KEYS,)
mount(routes, *RESOURCES)
