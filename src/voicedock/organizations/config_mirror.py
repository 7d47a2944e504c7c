"""Mirror the configuration's trunks, organizations, assistants, numbers and webhook endpoints
into the store.

Runs at every start-up and is idempotent: configured objects get stable ids (uuid5 of their
organization and name/number), so restarting updates them in place; objects created through the
API or ``voicedock numbers`` are left alone. Trunks are only ever defined here; the API reads
them. Nodes that start together on one database may both find a row missing and both insert it:
the one whose insert collides mirrors again, and then updates what the other wrote; one whose
transaction the database rolled back to break a lock cycle with another node's (a deadlock)
mirrors again too. A trunk or number the configuration leaves as it is stored is not written:
a node restarting (a rolling upgrade) takes no lock on the rows other nodes' placements lock
— they lock a number, then its trunk; the mirror writes trunks, then numbers — so it never
makes one of those placements the victim of a deadlock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from voicedock.backoff import Backoff
from voicedock.config import AssistantSettings, Settings
from voicedock.domain.assistant_config import config_of
from voicedock.domain.json import JsonObject, json_object
from voicedock.domain.records import Assistant, Organization, PhoneNumber, Trunk, utcnow
from voicedock.domain.webhooks import WebhookEndpoint
from voicedock.store.base import Store
from voicedock.store.errors import DuplicateKeyError, TransactionConflict

_NAMESPACE = uuid.UUID("5b0d3f5e-8d8a-4f0e-9d7c-6f6b2e0c7a11")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


async def ensure_organization(store: Store, name: str) -> Organization:
    """The organization called ``name``, created if needed (own transaction)."""
    existing = await store.get_organization_by_name(name)
    if existing is not None:
        return existing
    org = Organization(id=stable_id("organization", name), name=name)
    async with store.transaction() as tx:
        await tx.insert_organization(org)
    return org


# A collision needs another node writing the same rows at the same moment: nodes started
# together on a fresh database. A jittered pause lets the first one finish before the next try.
_ATTEMPTS = 5


async def mirror_config(store: Store, settings: Settings) -> None:
    backoff = Backoff(initial=0.05, cap=1.0)
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            await _mirror_once(store, settings)
        except (DuplicateKeyError, TransactionConflict):
            if attempt == _ATTEMPTS:
                raise
            await asyncio.sleep(backoff.next_delay())
        else:
            return


async def _mirror_once(store: Store, settings: Settings) -> None:
    # Reads happen before the write transaction: a store may serialize writers on one
    # connection, and a read from inside the transaction must not wait for it.
    now = utcnow()
    org_names = {a.organization for a in settings.assistants}
    org_names |= {n.organization for n in settings.numbers}
    org_names |= {w.organization for w in settings.webhooks.endpoints}
    orgs = {name: await ensure_organization(store, name) for name in sorted(org_names)}
    assistant_ids = {
        (a.organization, a.name): stable_id("assistant", orgs[a.organization].id, a.name)
        for a in settings.assistants
    }
    saved_assistants = {aid: await store.get_assistant(None, aid) for aid in assistant_ids.values()}
    saved_numbers = {
        n.number: await store.find_phone_number_by_e164(n.number) for n in settings.numbers
    }
    saved_trunks = {t.name: t for t in await store.list_trunks()}
    async with store.transaction() as tx:
        for t in settings.trunks:
            trunk = Trunk(
                t.name,
                t.endpoint or t.name,
                codec=t.codec,
                description=t.description,
                pbx=t.pbx,
                max_cps=t.max_cps,
                max_channels=t.max_channels,
            )
            if saved_trunks.get(trunk.name) != trunk:
                await tx.upsert_trunk(trunk)
        for a in settings.assistants:
            org = orgs[a.organization]
            assistant = Assistant(
                id=assistant_ids[(a.organization, a.name)],
                organization_id=org.id,
                name=a.name,
                config=config_of(assistant_config(a)),
                business_name=a.business_name,
            )
            saved = saved_assistants[assistant.id]
            if saved is None:
                await tx.insert_assistant(assistant)
            elif not saved.same_settings(assistant):  # a version only when the file changed it
                await tx.update_assistant(
                    dataclasses.replace(assistant, created_at=saved.created_at, updated_at=now)
                )
        for n in settings.numbers:
            org = orgs[n.organization]
            number = PhoneNumber(
                id=stable_id("number", n.number),
                organization_id=org.id,
                number=n.number,
                trunk=n.trunk,
                max_concurrent_calls=n.max_concurrent_calls,
                assistant_id=assistant_ids.get((n.organization, n.assistant)),
                label=n.label,
            )
            saved_number = saved_numbers[n.number]
            if saved_number is not None and saved_number.organization_id != org.id:
                # The operator gave the number to another organization: the previous one's
                # id, assistant and label go with it.
                await tx.delete_phone_number(saved_number.organization_id, saved_number.id)
                saved_number = None
            if saved_number is None:
                await tx.insert_phone_number(number)
                continue
            mirrored = dataclasses.replace(
                number,
                id=saved_number.id,
                squad_id=saved_number.squad_id,  # the organization's (PATCH), not configured
                language=saved_number.language,  # so is its language
                # and its split, of the versions of the assistant it answers with
                traffic_split=saved_number.traffic_split
                if number.assistant_id == saved_number.assistant_id
                else None,
                last_used_at=saved_number.last_used_at,
                created_at=saved_number.created_at,
                updated_at=saved_number.updated_at,
            )
            if mirrored != saved_number:
                await tx.update_phone_number(dataclasses.replace(mirrored, updated_at=now))
    await mirror_webhook_endpoints(store, settings, {o.name: o.id for o in orgs.values()})


async def mirror_webhook_endpoints(
    store: Store, settings: Settings, org_ids: dict[str, str]
) -> None:
    """Configured webhook endpoints: stable ids per organization and name. A changed one is
    replaced (its still-pending deliveries are dropped with it); unchanged ones are kept."""
    wanted: list[WebhookEndpoint] = []
    for w in settings.webhooks.endpoints:
        org_id = org_ids[w.organization]
        assistant = stable_id("assistant", org_id, w.assistant) if w.assistant else None
        wanted.append(
            WebhookEndpoint(
                id=stable_id("webhook", org_id, w.name),
                organization_id=org_id,
                url=w.url,
                secret=w.secret,
                assistant_id=assistant,
                event_types=list(w.event_types),
            )
        )
    saved = {
        e.id: e
        for org_id in sorted({e.organization_id for e in wanted})
        for e in await store.list_webhook_endpoints(org_id)
    }
    async with store.transaction() as tx:
        for endpoint in wanted:
            old = saved.get(endpoint.id)
            if old is not None and _same_endpoint(old, endpoint):
                continue
            if old is not None:
                await tx.delete_webhook_endpoint(old.organization_id, old.id)
            await tx.insert_webhook_endpoint(endpoint)


def _same_endpoint(a: WebhookEndpoint, b: WebhookEndpoint) -> bool:
    keys = ("url", "secret", "assistant_id", "event_types", "enabled")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def assistant_config(a: AssistantSettings) -> JsonObject:
    """The configuration an ``[[assistants]]`` entry is stored with (``Assistant.config``;
    checked at start-up by ``calls/assistants/configured.py``)."""
    config: JsonObject = {"provider": a.provider}
    for key in ("first_message", "system_prompt"):
        if getattr(a, key):
            config[key] = getattr(a, key)
    for key in ("facts", "stt_config", "tts_config", "llm_config"):
        section = json_object(dict(getattr(a, key)))
        if section:
            config[key] = section
    return config
