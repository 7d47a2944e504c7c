"""``EmbeddingsEndpoints``: an organization's own endpoint (through the egress guard, its
provider key opened in memory) where it has set one, else the operator's; a key that no longer
opens or exists gives no endpoint, with a warning that never holds the key."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from fakes.world import new_operator_key
from voicedock.config import ByokSettings
from voicedock.domain import knowledge
from voicedock.domain.key_box import key_box, sealing_context
from voicedock.domain.knowledge import KnowledgeEmbeddings
from voicedock.domain.records import Organization, ProviderKey
from voicedock.domain.tenant_provider_fields import KEY_NAME_MAX, KEY_NAME_PATTERN
from voicedock.knowledge.embeddings import EmbeddingsEndpoint
from voicedock.knowledge.endpoints import EmbeddingsEndpoints
from voicedock.store import open_store
from voicedock.store.base import Store

pytestmark = pytest.mark.unit

SECRET = "sk-org-embeddings-0123456789abcd"
ORG = "org-1"
OWN = KnowledgeEmbeddings(url="https://embed.example/v1/", model="own-embed", api_key_ref="mine")
OPERATOR = EmbeddingsEndpoint("http://127.0.0.1:8081/v1", "operator-embed", None, tenant=False)
BYOK = ByokSettings(key=new_operator_key())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite:///{tmp_path / 'k.db'}")
    await store.migrate()
    box = key_box(BYOK)
    assert box is not None
    key = ProviderKey(
        id="k1", organization_id=ORG, name="mine", provider="openai", sealed="", last4="abcd"
    )
    key.sealed = box.seal(SECRET, sealing_context(ORG, key.id))
    async with store.transaction() as tx:
        await tx.insert_organization(Organization(id=ORG, name="org"))
        await tx.insert_provider_key(key)
    try:
        yield store
    finally:
        await store.aclose()


async def _set(store: Store, setting: KnowledgeEmbeddings | None) -> None:
    org = await store.get_organization(ORG)
    assert org is not None
    async with store.transaction() as tx:
        await tx.update_organization(dataclasses.replace(org, knowledge_embeddings=setting))


async def test_the_operators_endpoint_until_the_organization_sets_its_own(store: Store) -> None:
    endpoints = EmbeddingsEndpoints(store, OPERATOR, BYOK, timeout_s=7.5)
    assert await endpoints(ORG) is OPERATOR
    assert await endpoints("no-such-org") is OPERATOR
    assert await EmbeddingsEndpoints(store, None, BYOK)(ORG) is None

    await _set(store, OWN)
    stored = await store.get_organization(ORG)
    assert stored is not None
    assert stored.knowledge_embeddings == OWN
    own = await endpoints(ORG)
    assert own == EmbeddingsEndpoint(
        "https://embed.example/v1", "own-embed", SECRET, 7.5, tenant=True
    )
    assert own is not None
    assert SECRET not in repr(own)
    keyless = msgspec.structs.replace(OWN, api_key_ref=None)
    await _set(store, keyless)
    assert await endpoints(ORG) == dataclasses.replace(own, api_key=None)

    await _set(store, None)
    assert await endpoints(ORG) is OPERATOR


@pytest.mark.parametrize(
    ("byok", "why"),
    [
        (ByokSettings(key=new_operator_key()), "does not open"),  # the operator's key changed
        (msgspec.structs.replace(BYOK, mode="off"), "does not allow"),
        (ByokSettings(), "no [byok] key"),
    ],
)
async def test_a_key_that_cannot_be_opened_gives_no_endpoint(
    store: Store, byok: ByokSettings, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    await _set(store, OWN)
    with caplog.at_level(logging.WARNING, logger="voicedock.knowledge"):
        assert await EmbeddingsEndpoints(store, OPERATOR, byok)(ORG) is None
    (warning,) = [r.getMessage() for r in caplog.records]
    assert why in warning
    assert "'mine'" in warning
    assert ORG in warning
    assert SECRET not in caplog.text


async def test_a_key_that_no_longer_exists_gives_no_endpoint(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    await _set(store, msgspec.structs.replace(OWN, api_key_ref="gone"))
    with caplog.at_level(logging.WARNING, logger="voicedock.knowledge"):
        assert await EmbeddingsEndpoints(store, OPERATOR, BYOK)(ORG) is None
    assert "no provider key has that name" in caplog.text


def test_a_key_reference_is_named_as_the_provider_keys_are() -> None:
    assert knowledge._KEY_NAME_PATTERN == KEY_NAME_PATTERN
    assert knowledge._KEY_NAME_MAX == KEY_NAME_MAX
