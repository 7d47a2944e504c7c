"""Issuing API keys: the secret is shown once; only its sha256 is stored."""

from __future__ import annotations

import secrets
import uuid

from voicedock.api.middleware import hash_key
from voicedock.calls.config_mirror import ensure_organization
from voicedock.domain.records import ApiKey, Organization
from voicedock.store.base import Store

KEY_PREFIX = "vd_"


async def issue_api_key(
    store: Store, organization: str, name: str = ""
) -> tuple[str, Organization]:
    """Create a key for ``organization`` (created if needed); returns (secret, organization)."""
    org = await ensure_organization(store, organization)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    async with store.transaction() as tx:
        await tx.insert_api_key(
            ApiKey(
                id=str(uuid.uuid4()), organization_id=org.id, key_hash=hash_key(secret), name=name
            )
        )
    return secret, org
