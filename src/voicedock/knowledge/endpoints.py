"""Where each organization's knowledge is embedded: its own OpenAI-compatible endpoint when it
has set one (``knowledge_embeddings`` on ``/organization``), else the operator's
(``[knowledge.embeddings]``), else nowhere (full-text search only).

An organization's endpoint is a tenant's URL: it is checked against the operator's egress
policy when it is set (``check_setting``: 400 ``URL refused``) and goes through the egress
guard at every request (``EmbeddingsEndpoint.tenant``). Its bearer token is one of the
organization's provider keys, named by ``api_key_ref`` and opened when the endpoint is asked
for, as a call opens the keys its providers name (``domain/key_box.py``); the key is only ever
in memory, never in the setting, an answer or a log line. A key that no longer opens (the
operator's ``[byok]`` key changed, provider keys turned off) or no longer exists leaves the
organization without an endpoint, with a warning: its documents are neither embedded nor
searched by meaning with another key, nor sent to the operator's endpoint instead.
"""

from __future__ import annotations

import logging

from voicedock.config import ByokSettings
from voicedock.domain.key_box import KeyBoxError, open_provider_key
from voicedock.domain.knowledge import KnowledgeEmbeddings
from voicedock.egress import EgressPolicy
from voicedock.egress.guard import literal_refusal
from voicedock.errors import BadRequest, Forbidden, Unprocessable
from voicedock.knowledge.embeddings import EmbeddingsEndpoint
from voicedock.store.base import Store

log = logging.getLogger("voicedock.knowledge")

SETTING = "knowledge_embeddings"


class EmbeddingsEndpoints:
    """An ``EndpointFor``: the endpoint an organization's chunks and queries are embedded
    with. ``operator``: the operator's endpoint (None: none); ``timeout_s``: the operator's
    bound on one request, an organization's endpoint's too."""

    def __init__(
        self,
        store: Store,
        operator: EmbeddingsEndpoint | None,
        byok: ByokSettings,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self._store, self._operator, self._byok = store, operator, byok
        self._timeout_s = timeout_s

    async def __call__(self, organization_id: str) -> EmbeddingsEndpoint | None:
        org = await self._store.get_organization(organization_id)
        own = org.knowledge_embeddings if org is not None else None
        if own is None:
            return self._operator
        api_key = None
        if own.api_key_ref is not None:
            api_key = await self._opened(organization_id, own.api_key_ref)
            if api_key is None:
                return None
        return EmbeddingsEndpoint(
            own.url.rstrip("/"), own.model, api_key, self._timeout_s, tenant=True
        )

    async def _opened(self, organization_id: str, name: str) -> str | None:
        """The provider key ``name`` of the organization, opened (None, with a warning that
        names the organization and the key's name only, when it cannot be used)."""
        try:
            return await self._open(organization_id, name)
        except _Unusable as exc:
            log.warning(
                "organization %s: its knowledge embeddings endpoint is not used: "
                "api_key_ref %r: %s",
                organization_id,
                name,
                exc,
            )
            return None

    async def _open(self, organization_id: str, name: str) -> str:
        if self._byok.mode == "off":
            raise _Unusable("the operator does not allow provider keys")
        key = await self._store.get_provider_key(organization_id, name=name)
        if key is None:
            raise _Unusable("no provider key has that name")
        try:
            return open_provider_key(self._byok, organization_id, key.id, key.sealed)
        except KeyBoxError as exc:
            raise _Unusable(str(exc)) from None
        except OSError as exc:  # [byok] key_file, readable at start, no longer is
            raise _Unusable(f"the [byok] key file cannot be read: {exc.strerror}") from None


class _Unusable(Exception):
    """Why an organization's key cannot be used now (safe to log: never the key)."""


async def check_setting(
    setting: KnowledgeEmbeddings,
    organization_id: str,
    store: Store,
    byok: ByokSettings,
    policy: EgressPolicy,
) -> None:
    """An organization's endpoint as it is set (its shape is the model's): 400 ``URL
    refused`` for a URL the operator's egress policy refuses (an address or a service of the
    operator's; a DNS name's addresses are checked at each request); 403 for a key reference
    where the operator does not allow provider keys; 422 for one naming none of them."""
    reason = literal_refusal(setting.url, policy)
    if reason is not None:
        raise BadRequest(f"{SETTING}.url: {reason}", error="URL refused")
    name = setting.api_key_ref
    if name is None:
        return
    if byok.mode == "off":
        raise Forbidden(
            f"{SETTING}.api_key_ref: the operator does not allow organizations' own provider keys",
            error="Provider keys disabled",
        )
    if await store.get_provider_key(organization_id, name=name) is None:
        raise Unprocessable(f"{SETTING}.api_key_ref: no provider key named {name!r}")


__all__ = ["SETTING", "EmbeddingsEndpoints", "check_setting"]
