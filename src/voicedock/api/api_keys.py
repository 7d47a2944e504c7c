"""API keys: issue (the secret is shown once; only its sha256 is stored), list, rename, revoke.

Shared by the ``voicedock keys`` commands and the ``/api-keys`` endpoints. Revoking is
immediate: every request re-reads the key, and open event streams and console sessions of a
revoked key end.
"""

from __future__ import annotations

import secrets
import uuid

from voicedock.api.middleware import hash_key
from voicedock.calls.config_mirror import ensure_organization
from voicedock.domain.records import ApiKey, KeyScope, Organization, utcnow
from voicedock.store.base import Store

KEY_PREFIX = "vd_"
MAX_NAME = 100


async def issue_api_key(
    store: Store, organization: str, name: str = "", scope: KeyScope = KeyScope.FULL
) -> tuple[str, Organization]:
    """Create a key for ``organization`` (created if needed); returns (secret, organization)."""
    org = await ensure_organization(store, organization)
    secret, _ = await add_api_key(store, org.id, name, scope)
    return secret, org


async def add_api_key(
    store: Store, organization_id: str, name: str, scope: KeyScope
) -> tuple[str, ApiKey]:
    """Create a key for an existing organization; returns (secret, key)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=str(uuid.uuid4()),
        organization_id=organization_id,
        key_hash=hash_key(secret),
        name=name,
        scope=scope,
    )
    async with store.transaction() as tx:
        await tx.insert_api_key(key)
    return secret, key


async def revoke_api_key(store: Store, key: ApiKey) -> ApiKey:
    """Revoke ``key`` now (a key already revoked keeps its first revocation time)."""
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        async with store.transaction() as tx:
            await tx.update_api_key(key)
    return key


async def rename_api_key(store: Store, key: ApiKey, name: str) -> ApiKey:
    key.name = name
    async with store.transaction() as tx:
        await tx.update_api_key(key)
    return key
