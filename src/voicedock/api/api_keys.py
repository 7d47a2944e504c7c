"""API keys: issue (the secret is shown once; only its sha256 is stored), list, rename, revoke,
and the operator's live-listen grant.

Shared by the ``voicedock keys`` commands and the ``/api-keys`` endpoints. Revoking is
immediate: every request re-reads the key, and open event streams and console sessions of a
revoked key end. A key hears live calls when it holds the listen grant (``ApiKey.listen``:
full and admin keys unless the operator withdraws it, read-only keys only where the operator
grants it); withdrawing it ends the key's open listen streams.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from voicedock.api.audit import Actor, Doing
from voicedock.api.authentication import hash_key
from voicedock.domain.records import ApiKey, KeyScope, Organization, listen_by_default, utcnow
from voicedock.organizations.config_mirror import ensure_organization
from voicedock.store.base import Store, Transaction

KEY_PREFIX = "vd_"
MAX_NAME = 100


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """The key to create: its name, scope, and whether it hears live calls (None: as keys of
    its scope do, ``listen_by_default``)."""

    name: str = ""
    scope: KeyScope = KeyScope.FULL
    listen: bool | None = None


async def issue_api_key(
    store: Store,
    organization: str,
    name: str = "",
    scope: KeyScope = KeyScope.FULL,
    *,
    listen: bool | None = None,
    by_operator: bool = False,
) -> tuple[str, Organization]:
    """Create a key for ``organization`` (created if needed); returns (secret, organization).
    ``by_operator``: the operator's command, recorded in the organization's audit trail."""
    org = await ensure_organization(store, organization)
    doing = Doing(Actor.operator(org.id), "api_key.created", "api_key") if by_operator else None
    secret, _ = await add_api_key(store, org.id, NewApiKey(name, scope, listen), doing)
    return secret, org


async def add_api_key(
    store: Store, organization_id: str, new: NewApiKey, doing: Doing | None = None
) -> tuple[str, ApiKey]:
    """Create ``new`` for an existing organization; returns (secret, key). ``doing``: the
    request's (or the operator's command's) audit event, recorded with the change."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        key_hash=hash_key(secret),
        name=new.name,
        scope=new.scope,
        listen=listen_by_default(new.scope) if new.listen is None else new.listen,
    )
    async with store.transaction() as tx:
        await tx.insert_api_key(key)
        await _recorded(tx, doing, key)
    return secret, key


async def revoke_api_key(store: Store, key: ApiKey, doing: Doing | None = None) -> ApiKey:
    """Revoke ``key`` now (a key already revoked keeps its first revocation time)."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        async with store.transaction() as tx:
            await tx.update_api_key(key)
            await _recorded(tx, doing, key)
    return key


async def rename_api_key(
    store: Store, key: ApiKey, name: str, doing: Doing | None = None
) -> ApiKey:
    key.name = name
    async with store.transaction() as tx:
        await tx.update_api_key(key)
        await _recorded(tx, doing, key)
    return key


async def _recorded(tx: Transaction, doing: Doing | None, key: ApiKey) -> None:
    if doing is not None:
        await doing.record(tx, key.id)


async def set_listen(store: Store, key: ApiKey, listen: bool, doing: Doing | None = None) -> ApiKey:
    """The operator grants ``key`` live listen, or withdraws it (its open streams end)."""
    key.listen = listen
    async with store.transaction() as tx:
        await tx.update_api_key(key)
        await _recorded(tx, doing, key)
    return key
