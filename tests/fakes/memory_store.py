"""An in-memory ``Store`` for fast engine and API tests (one asyncio lock = one writer).

Transactions work on deep copies and commit by swapping them in, so a raised error inside
``async with store.transaction()`` leaves nothing behind, as with a database.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from fakes.memory_outbox import InMemoryOutbox
from voicedock.domain.billing import RateCard, RateCardTerms
from voicedock.domain.do_not_call import covering
from voicedock.domain.knowledge import (
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
    KnowledgeHit,
    KnowledgeUse,
)
from voicedock.domain.records import (
    AnalysisTemplate,
    ApiKey,
    Assistant,
    AssistantVersion,
    Call,
    CallerMemory,
    CallEvent,
    CallMessage,
    CallStatus,
    IdempotencyRecord,
    NodeLease,
    Organization,
    PhoneNumber,
    Squad,
    ToolTemplate,
    Trunk,
    utcnow,
)
from voicedock.domain.webhooks import Delivery, DeliveryCaps, WebhookEndpoint
from voicedock.errors import StoreError
from voicedock.store.base import (
    CallPage,
    CallQuery,
    NumberChoice,
    ScheduledChoice,
    ScheduledWaiting,
)
from voicedock.store.protocols.billing import RatedCall, SpendLimit


@dataclass
class _Data:
    orgs: dict[str, Organization] = field(default_factory=dict)
    keys: dict[str, ApiKey] = field(default_factory=dict)
    trunks: dict[str, Trunk] = field(default_factory=dict)
    numbers: dict[str, PhoneNumber] = field(default_factory=dict)
    assistants: dict[str, Assistant] = field(default_factory=dict)
    assistant_versions: list[AssistantVersion] = field(default_factory=list)
    caller_memories: list[CallerMemory] = field(default_factory=list)
    tool_templates: dict[str, ToolTemplate] = field(default_factory=dict)
    analysis_templates: dict[str, AnalysisTemplate] = field(default_factory=dict)
    squads: dict[str, Squad] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    messages: list[CallMessage] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    webhook_endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    outbox: InMemoryOutbox = field(default_factory=InMemoryOutbox)
    nodes: dict[str, NodeLease] = field(default_factory=dict)
    rate_cards: list[RateCard] = field(default_factory=list)
    spend_limits: dict[str, SpendLimit] = field(default_factory=dict)
    spend_alerts: set[tuple[str, str, int]] = field(default_factory=set)
    # (organization id, entry) of the organizations' do-not-call lists ("" : the operator's)
    do_not_call: set[tuple[str, str]] = field(default_factory=set)
    knowledge_bases: dict[str, KnowledgeBase] = field(default_factory=dict)
    knowledge_documents: dict[str, KnowledgeDocument] = field(default_factory=dict)
    knowledge_chunks: dict[str, list[KnowledgeChunk]] = field(default_factory=dict)  # by document
    seq: int = 0


class _Billing:
    """Billing's lookups (``BillingLookups``) and the do-not-call lists' (``DoNotCallLookups``)
    on a transaction's or the store's data."""

    async def is_do_not_call(self, organization_id: str, number: str) -> bool:
        listed = self._billing().do_not_call
        return any((o, e) in listed for o in (organization_id, "") for e in covering(number))

    def _billing(self) -> _Data:
        raise NotImplementedError

    async def current_rate_card(self, organization_id: str) -> RateCard | None:
        cards = self._billing().rate_cards
        own = [c for c in cards if c.organization_id == organization_id]
        return (own or [c for c in cards if c.organization_id is None] or [None])[-1]

    async def get_spend_limit(self, organization_id: str) -> SpendLimit | None:
        return self._billing().spend_limits.get(organization_id)

    async def rated_calls(
        self, organization_id: str, start: datetime, end: datetime
    ) -> list[RatedCall]:
        calls = [
            c
            for c in self._billing().calls.values()
            if c.organization_id == organization_id
            and c.cost is not None
            and c.started_at is not None
            and start <= c.started_at < end
        ]
        calls.sort(key=lambda c: (c.started_at, c.id))
        return [RatedCall(c.id, c.started_at, c.cost) for c in calls]  # type: ignore[arg-type]


def _due(calls: Collection[Call], now: datetime) -> list[Call]:
    """The scheduled calls due at ``now``, the one due first first."""
    due = [
        c
        for c in calls
        if c.status is CallStatus.SCHEDULED and c.scheduled_at and c.scheduled_at <= now
    ]
    return sorted(due, key=lambda c: (c.scheduled_at or now, c.seq))


def _knowledge_base(d: _Data, organization_id: str, base_id: str) -> KnowledgeBase | None:
    base = d.knowledge_bases.get(base_id)
    return None if base is None or base.organization_id != organization_id else copy.deepcopy(base)


def _knowledge_use(d: _Data, organization_id: str) -> KnowledgeUse:
    documents = [
        doc for doc in d.knowledge_documents.values() if doc.organization_id == organization_id
    ]
    return KnowledgeUse(
        bases=sum(1 for b in d.knowledge_bases.values() if b.organization_id == organization_id),
        documents=len(documents),
        chunks=sum(doc.chunks for doc in documents),
        bytes=sum(doc.size_bytes for doc in documents),
    )


def _search_knowledge(
    d: _Data, organization_id: str, base_ids: Sequence[str], words: Sequence[str], limit: int
) -> list[KnowledgeHit]:
    """The chunks holding any of ``words`` (as substrings of their lower-cased text), those
    holding the most first; then in the order they were stored."""
    scored: list[tuple[int, int, KnowledgeHit]] = []
    order = 0
    for document in d.knowledge_documents.values():
        theirs = document.organization_id == organization_id
        if not theirs or document.knowledge_base_id not in base_ids:
            continue
        for chunk in d.knowledge_chunks.get(document.id, []):
            order += 1
            lowered = chunk.text.lower()
            score = sum(1 for word in words if word in lowered)
            if score:
                hit = KnowledgeHit(
                    knowledge_base_id=document.knowledge_base_id,
                    document_id=document.id,
                    document_name=document.name,
                    position=chunk.position,
                    text=chunk.text,
                    score=float(score),
                )
                scored.append((-score, order, hit))
    scored.sort(key=lambda found: (found[0], found[1]))
    return [hit for _, _, hit in scored[: max(limit, 0)]]


class _Reading:
    """The data a transaction sees, as the store's reads expect it."""

    def __init__(self, data: _Data) -> None:
        self._data = data


class MemoryTransaction(_Billing):
    def __init__(self, data: _Data) -> None:
        self.d = data

    def _billing(self) -> _Data:
        return self.d

    async def add_rate_card(
        self, organization_id: str | None, card_id: str, terms: RateCardTerms, now: datetime
    ) -> RateCard:
        versions = [c for c in self.d.rate_cards if c.organization_id == organization_id]
        card = RateCard(card_id, organization_id, len(versions) + 1, terms, now)
        self.d.rate_cards.append(card)
        return card

    async def set_spend_limit(self, limit: SpendLimit | None, organization_id: str) -> None:
        self.d.spend_limits.pop(organization_id, None)
        if limit is not None:
            self.d.spend_limits[organization_id] = limit

    async def record_spend_alert(
        self, organization_id: str, month: str, threshold: int, now: datetime
    ) -> bool:
        key = (organization_id, month, threshold)
        new = key not in self.d.spend_alerts
        self.d.spend_alerts.add(key)
        return new

    def _next(self) -> int:
        self.d.seq += 1
        return self.d.seq

    async def get_organization(self, organization_id: str) -> Organization | None:
        return copy.deepcopy(self.d.orgs.get(organization_id))

    async def get_phone_number(
        self, organization_id: str | None, number_id: str
    ) -> PhoneNumber | None:
        return await MemoryStore.get_phone_number(_Reading(self.d), organization_id, number_id)

    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]:
        return await MemoryStore.list_phone_numbers(_Reading(self.d), organization_id)

    async def insert_organization(self, org: Organization) -> None:
        self.d.orgs[org.id] = copy.deepcopy(org)

    async def update_organization(self, org: Organization) -> None:
        if org.id not in self.d.orgs:
            raise StoreError("organization to update does not exist")
        self.d.orgs[org.id] = copy.deepcopy(org)

    async def insert_api_key(self, key: ApiKey) -> None:
        self.d.keys[key.key_hash] = copy.deepcopy(key)

    async def update_api_key(self, key: ApiKey) -> None:
        self.d.keys[key.key_hash] = copy.deepcopy(key)

    async def upsert_trunk(self, trunk: Trunk) -> None:
        self.d.trunks[trunk.name] = copy.deepcopy(trunk)

    async def insert_phone_number(self, number: PhoneNumber) -> None:
        if any(n.number == number.number for n in self.d.numbers.values()):
            raise ValueError("duplicate number")
        self.d.numbers[number.id] = copy.deepcopy(number)

    async def update_phone_number(self, number: PhoneNumber) -> None:
        self.d.numbers[number.id] = copy.deepcopy(number)

    async def delete_phone_number(self, organization_id: str, number_id: str) -> bool:
        n = self.d.numbers.get(number_id)
        if n is None or n.organization_id != organization_id:
            return False
        del self.d.numbers[number_id]
        return True

    async def reserve_phone_number(self, choice: NumberChoice, now: datetime) -> PhoneNumber | None:
        number_id, among, trunks = choice.number_id, choice.among, choice.trunks
        candidates = [
            n
            for n in self.d.numbers.values()
            if n.organization_id == choice.organization_id
            and (number_id is None or n.id == number_id)
            and (number_id is not None or not among or n.id in among)
            and (trunks is None or n.trunk in trunks)
        ]
        free = [n for n in candidates if _active(self.d, n.id) < n.max_concurrent_calls]
        if not free:
            return None
        epoch = datetime.min.replace(tzinfo=now.tzinfo)
        chosen = min(free, key=lambda n: (n.last_used_at or epoch, n.created_at, n.id))
        chosen.last_used_at = now
        return copy.deepcopy(chosen)

    async def insert_assistant(self, assistant: Assistant, by: str | None = None) -> None:
        assistant.version = 1
        self.d.assistants[assistant.id] = copy.deepcopy(assistant)
        self._versioned(assistant, by)

    async def update_assistant(self, assistant: Assistant, by: str | None = None) -> None:
        stored = self.d.assistants.get(assistant.id)
        if stored is None or stored.organization_id != assistant.organization_id:
            raise StoreError("assistant to update does not exist")
        assistant.version, assistant.updated_at = self._next_version(stored), utcnow()
        self.d.assistants[assistant.id] = copy.deepcopy(assistant)
        self._versioned(assistant, by)

    async def insert_assistant_draft(
        self, assistant: Assistant, by: str | None = None
    ) -> AssistantVersion:
        stored = self.d.assistants.get(assistant.id)
        if stored is None or stored.organization_id != assistant.organization_id:
            raise StoreError("assistant to update does not exist")
        draft = copy.deepcopy(assistant)
        draft.version, draft.updated_at = self._next_version(stored), utcnow()
        version = AssistantVersion.of(draft, by, draft=True)
        self.d.assistant_versions.append(version)
        return copy.deepcopy(version)

    async def publish_assistant_version(self, assistant: Assistant) -> None:
        stored = self.d.assistants.get(assistant.id)
        if stored is None or stored.organization_id != assistant.organization_id:
            raise StoreError("assistant to update does not exist")
        assistant.updated_at = utcnow()
        self.d.assistants[assistant.id] = copy.deepcopy(assistant)
        for v in self.d.assistant_versions:
            if v.assistant_id == assistant.id and v.version == assistant.version:
                v.published_at = v.published_at or assistant.updated_at

    def _next_version(self, stored: Assistant) -> int:
        numbers = [v.version for v in self.d.assistant_versions if v.assistant_id == stored.id]
        return max([stored.version, *numbers]) + 1

    async def set_assistant_release(self, assistant: Assistant) -> None:
        stored = self.d.assistants.get(assistant.id)
        if stored is None or stored.organization_id != assistant.organization_id:
            raise StoreError("assistant to update does not exist")
        stored.traffic_split = copy.deepcopy(assistant.traffic_split)
        stored.release_gate = assistant.release_gate

    def _versioned(self, assistant: Assistant, by: str | None) -> None:
        self.d.assistant_versions.append(AssistantVersion.of(copy.deepcopy(assistant), by))

    async def delete_assistant(self, organization_id: str, assistant_id: str) -> bool:
        a = self.d.assistants.get(assistant_id)
        if a is None or a.organization_id != organization_id:
            return False
        del self.d.assistants[assistant_id]
        self.d.assistant_versions = [
            v for v in self.d.assistant_versions if v.assistant_id != assistant_id
        ]
        return True

    async def insert_tool_template(self, template: ToolTemplate, by: str | None = None) -> None:
        self.d.tool_templates[template.id] = copy.deepcopy(template)

    async def update_tool_template(self, template: ToolTemplate, by: str | None = None) -> None:
        template.version += 1
        self.d.tool_templates[template.id] = copy.deepcopy(template)

    async def delete_tool_template(self, organization_id: str, template_id: str) -> bool:
        t = self.d.tool_templates.get(template_id)
        if t is None or t.organization_id != organization_id:
            return False
        del self.d.tool_templates[template_id]
        return True

    async def insert_analysis_template(self, template: AnalysisTemplate) -> None:
        self.d.analysis_templates[template.id] = copy.deepcopy(template)

    async def update_analysis_template(self, template: AnalysisTemplate) -> None:
        self.d.analysis_templates[template.id] = copy.deepcopy(template)

    async def delete_analysis_template(self, organization_id: str, template_id: str) -> bool:
        t = self.d.analysis_templates.get(template_id)
        if t is None or t.organization_id != organization_id:
            return False
        del self.d.analysis_templates[template_id]
        return True

    async def insert_squad(self, squad: Squad, by: str | None = None) -> None:
        self.d.squads[squad.id] = copy.deepcopy(squad)

    async def get_knowledge_base(self, organization_id: str, base_id: str) -> KnowledgeBase | None:
        return _knowledge_base(self.d, organization_id, base_id)

    async def insert_knowledge_base(self, base: KnowledgeBase) -> None:
        self.d.knowledge_bases[base.id] = copy.deepcopy(base)

    async def update_knowledge_base(self, base: KnowledgeBase) -> None:
        base.updated_at = utcnow()
        if _knowledge_base(self.d, base.organization_id, base.id) is None:
            raise StoreError("knowledge base to update does not exist")
        self.d.knowledge_bases[base.id] = copy.deepcopy(base)

    async def delete_knowledge_base(self, organization_id: str, base_id: str) -> bool:
        if _knowledge_base(self.d, organization_id, base_id) is None:
            return False
        for document in list(self.d.knowledge_documents.values()):
            if document.knowledge_base_id == base_id:
                del self.d.knowledge_documents[document.id]
                self.d.knowledge_chunks.pop(document.id, None)
        del self.d.knowledge_bases[base_id]
        return True

    async def insert_knowledge_document(
        self, document: KnowledgeDocument, chunks: Sequence[KnowledgeChunk]
    ) -> None:
        self.d.knowledge_documents[document.id] = copy.deepcopy(document)
        self.d.knowledge_chunks[document.id] = list(chunks)

    async def delete_knowledge_document(self, organization_id: str, document_id: str) -> bool:
        document = self.d.knowledge_documents.get(document_id)
        if document is None or document.organization_id != organization_id:
            return False
        del self.d.knowledge_documents[document_id]
        self.d.knowledge_chunks.pop(document_id, None)
        return True

    async def knowledge_use_locked(self, organization_id: str) -> KnowledgeUse:
        return _knowledge_use(self.d, organization_id)  # the store's one writer holds it

    async def insert_caller_memory(self, memory: CallerMemory) -> None:
        self.d.caller_memories.append(copy.deepcopy(memory))

    async def delete_caller_memories(
        self, organization_id: str, party: str, memory_id: str | None = None
    ) -> int:
        def gone(m: CallerMemory) -> bool:
            mine = m.organization_id == organization_id and m.party == party
            return mine and memory_id in (None, m.id)

        before = len(self.d.caller_memories)
        self.d.caller_memories = [m for m in self.d.caller_memories if not gone(m)]
        return before - len(self.d.caller_memories)

    async def update_caller_memory(self, memory: CallerMemory) -> None:
        for m in self.d.caller_memories:
            if m.id == memory.id and m.organization_id == memory.organization_id:
                m.summary, m.facts = memory.summary, copy.deepcopy(memory.facts)
                return
        raise StoreError("caller memory to update does not exist")

    async def insert_call(self, call: Call) -> Call:
        stored = replace(copy.deepcopy(call), seq=self._next())
        self.d.calls[call.id] = stored
        return copy.deepcopy(stored)

    async def get_call_for_update(self, call_id: str) -> Call | None:
        return copy.deepcopy(self.d.calls.get(call_id))

    async def update_call(self, call: Call) -> None:
        stored = self.d.calls.get(call.id)
        owner = call.owner_node if stored is None else stored.owner_node  # only claims move it
        self.d.calls[call.id] = replace(copy.deepcopy(call), owner_node=owner)

    async def clock(self) -> datetime:
        return utcnow()

    # Dial limits are counted by the SQL stores (tests/api/test_campaigns_api.py): here every
    # trunk and organization is unlimited, and a dial is admitted at once.
    async def trunk_for_update(self, trunk: str) -> None:
        return None

    async def lock_organization(self, organization_id: str) -> None:
        return None

    async def count_active_calls(self, by: str, value: str) -> int:
        return 0

    async def trunk_dials(
        self, trunk: str, admitted_after: datetime, done_after: datetime
    ) -> list[datetime | None]:
        return []

    async def record_trunk_dial(self, trunk: str, now: datetime, forget_before: datetime) -> int:
        return 0

    async def claim_scheduled_call(
        self, node_id: str, now: datetime, choice: ScheduledChoice
    ) -> Call | None:
        due = [
            c
            for c in _due(self.d.calls.values(), now)
            if c.id not in choice.skip and choice.organization_id in (None, c.organization_id)
        ]
        if not due:
            return None
        first = due[0]
        first.owner_node = node_id
        return copy.deepcopy(first)

    async def scheduled_waiting(self, organization_id: str) -> ScheduledWaiting:
        waiting = [
            c.scheduled_at
            for c in self.d.calls.values()
            if c.status is CallStatus.SCHEDULED and c.organization_id == organization_id
        ]
        return ScheduledWaiting(len(waiting), min((w for w in waiting if w), default=None))

    async def dial_done(self, dial_id: int, now: datetime) -> None:
        return None

    async def contact_of_call(self, call_id: str) -> None:
        return None  # campaigns live in the SQL stores

    async def nodes_for_update(self) -> list[NodeLease]:
        return sorted(self.d.nodes.values(), key=lambda n: n.id)

    async def put_node(self, lease: NodeLease) -> None:
        self.d.nodes[lease.id] = lease

    async def renew_node(
        self, node_id: str, run: str, until: datetime, *, draining: bool = False
    ) -> bool | None:
        lease = self.d.nodes.get(node_id)
        if lease is None or lease.run != run:
            return None
        lease = replace(lease, lease_until=until, draining=lease.draining or draining)
        self.d.nodes[node_id] = lease
        return lease.draining

    async def drain_node(self, node_id: str) -> NodeLease | None:
        lease = self.d.nodes.get(node_id)
        if lease is None:
            return None
        self.d.nodes[node_id] = lease = replace(lease, draining=True)
        return lease

    async def delete_node(self, node_id: str, run: str | None = None) -> bool:
        lease = self.d.nodes.get(node_id)
        if lease is None or (run is not None and lease.run != run):
            return False
        del self.d.nodes[node_id]
        return True

    def _take(self, node_id: str, owners: set[str | None]) -> list[Call]:
        taken = []
        for call in sorted(self.d.calls.values(), key=lambda c: c.seq):
            if call.status.active and call.owner_node in owners:
                call.owner_node = node_id
                taken.append(copy.deepcopy(call))
        return taken

    async def take_unowned_calls(self, node_id: str) -> list[Call]:
        return self._take(node_id, {None})

    async def claim_lost_calls(self, node_id: str, now: datetime) -> list[Call]:
        for lease in list(self.d.nodes.values()):
            if lease.lease_until <= now and lease.id != node_id:
                del self.d.nodes[lease.id]
        owners = {c.owner_node for c in self.d.calls.values()} - set(self.d.nodes) - {None}
        return self._take(node_id, owners)

    async def add_message(self, message: CallMessage) -> CallMessage:
        stored = replace(message, seq=self._next())
        self.d.messages.append(stored)
        return stored

    async def add_event(self, event: CallEvent) -> CallEvent:
        stored = replace(copy.deepcopy(event), seq=self._next())
        self.d.events.append(stored)
        return stored

    async def get_idempotency(self, organization_id: str, key: str) -> IdempotencyRecord | None:
        return copy.deepcopy(self.d.idempotency.get((organization_id, key)))

    async def put_idempotency(self, record: IdempotencyRecord) -> None:
        self.d.idempotency[(record.organization_id, record.key)] = copy.deepcopy(record)

    async def delete_idempotency_before(self, cutoff: datetime) -> int:
        expired = [k for k, r in self.d.idempotency.items() if r.created_at <= cutoff]
        for k in expired:
            del self.d.idempotency[k]
        return len(expired)

    async def insert_webhook_endpoint(self, endpoint: WebhookEndpoint) -> None:
        if endpoint.id in self.d.webhook_endpoints:
            raise ValueError("duplicate webhook endpoint")
        self.d.webhook_endpoints[endpoint.id] = copy.deepcopy(endpoint)
        self.d.outbox.add_endpoint(
            endpoint.id, endpoint.url, endpoint.secret, endpoint.organization_id
        )
        if not endpoint.enabled:
            await self.d.outbox.disable_endpoint(endpoint.id)

    async def delete_webhook_endpoint(self, organization_id: str, endpoint_id: str) -> bool:
        e = self.d.webhook_endpoints.get(endpoint_id)
        if e is None or e.organization_id != organization_id:
            return False
        del self.d.webhook_endpoints[endpoint_id]
        outbox = self.d.outbox
        outbox.endpoints.pop(endpoint_id, None)
        for key in [k for k, r in outbox.records.items() if r.endpoint_id == endpoint_id]:
            del outbox.records[key]  # ON DELETE CASCADE
        return True

    async def list_webhook_endpoints(self, organization_id: str) -> list[WebhookEndpoint]:
        found = [
            e for e in self.d.webhook_endpoints.values() if e.organization_id == organization_id
        ]
        return copy.deepcopy(sorted(found, key=lambda e: (e.created_at, e.id)))

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        await self.d.outbox.enqueue(endpoint_id, event_type, payload, msg_id)


def _active(d: _Data, number_id: str) -> int:
    return sum(1 for c in d.calls.values() if c.number_id == number_id and c.status.active)


class MemoryOutbox:
    """The worker's ``Outbox`` over the committed data; each call is its own transaction."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def enqueue(self, endpoint_id: str, event_type: str, payload: bytes, msg_id: str) -> None:
        async with self._store.transaction() as tx:
            await tx.enqueue(endpoint_id, event_type, payload, msg_id)

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, *, caps: DeliveryCaps
    ) -> list[Delivery]:
        async with self._store.transaction() as tx:
            return await tx.d.outbox.claim_due(now, limit, lease, caps=caps)

    async def mark_delivered(self, delivery_id: str) -> None:
        async with self._store.transaction() as tx:
            await tx.d.outbox.mark_delivered(delivery_id)

    async def mark_failed(
        self, delivery_id: str, next_attempt_at: datetime | None, error: str
    ) -> None:
        async with self._store.transaction() as tx:
            await tx.d.outbox.mark_failed(delivery_id, next_attempt_at, error)

    async def disable_endpoint(self, endpoint_id: str) -> None:
        async with self._store.transaction() as tx:
            await tx.d.outbox.disable_endpoint(endpoint_id)
            endpoint = tx.d.webhook_endpoints.get(endpoint_id)
            if endpoint is not None:
                endpoint.enabled = False


class MemoryStore(_Billing):
    def __init__(self) -> None:
        self._data = _Data()
        self._writer = asyncio.Lock()
        self.closed = False

    def _billing(self) -> _Data:
        return self._data

    async def rate_card_versions(self, organization_id: str | None) -> list[RateCard]:
        return [c for c in self._data.rate_cards if c.organization_id == organization_id]

    async def migrate(self) -> None:
        return None

    async def aclose(self) -> None:
        self.closed = True

    @asynccontextmanager
    async def transaction(self, *, brief: bool = False) -> AsyncIterator[MemoryTransaction]:
        async with self._writer:
            work = copy.deepcopy(self._data)
            yield MemoryTransaction(work)
            self._data = work

    async def get_organization(self, organization_id: str) -> Organization | None:
        return copy.deepcopy(self._data.orgs.get(organization_id))

    async def get_organization_by_name(self, name: str) -> Organization | None:
        return next((copy.deepcopy(o) for o in self._data.orgs.values() if o.name == name), None)

    async def find_api_key(self, key_hash: str) -> ApiKey | None:
        return copy.deepcopy(self._data.keys.get(key_hash))

    async def get_api_key(self, organization_id: str | None, key_id: str) -> ApiKey | None:
        found = next((k for k in self._data.keys.values() if k.id == key_id), None)
        if found is None or organization_id not in (None, found.organization_id):
            return None
        return copy.deepcopy(found)

    async def list_api_keys(self, organization_id: str) -> list[ApiKey]:
        keys = [k for k in self._data.keys.values() if k.organization_id == organization_id]
        return [copy.deepcopy(k) for k in sorted(keys, key=lambda k: (k.created_at, k.id))]

    async def list_trunks(self) -> list[Trunk]:
        return [copy.deepcopy(t) for t in sorted(self._data.trunks.values(), key=lambda t: t.name)]

    async def get_trunk(self, name: str) -> Trunk | None:
        return copy.deepcopy(self._data.trunks.get(name))

    async def get_phone_number(
        self, organization_id: str | None, number_id: str
    ) -> PhoneNumber | None:
        n = self._data.numbers.get(number_id)
        if n is None or (organization_id is not None and n.organization_id != organization_id):
            return None
        return copy.deepcopy(n)

    async def find_phone_number_by_e164(self, number: str) -> PhoneNumber | None:
        found = (n for n in self._data.numbers.values() if n.number == number)
        return copy.deepcopy(next(found, None))

    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]:
        nums = [n for n in self._data.numbers.values() if n.organization_id == organization_id]
        return copy.deepcopy(sorted(nums, key=lambda n: (n.created_at, n.id)))

    async def count_active_calls(self, number_id: str) -> int:
        return _active(self._data, number_id)

    async def get_assistant(
        self, organization_id: str | None, assistant_id: str
    ) -> Assistant | None:
        a = self._data.assistants.get(assistant_id)
        if a is None or (organization_id is not None and a.organization_id != organization_id):
            return None
        return copy.deepcopy(a)

    async def list_assistants(self, organization_id: str) -> list[Assistant]:
        items = [a for a in self._data.assistants.values() if a.organization_id == organization_id]
        return copy.deepcopy(sorted(items, key=lambda a: (a.created_at, a.id)))

    async def list_assistant_versions(
        self, organization_id: str, assistant_id: str
    ) -> list[AssistantVersion]:
        found = [
            v
            for v in self._data.assistant_versions
            if v.assistant_id == assistant_id and v.organization_id == organization_id
        ]
        return copy.deepcopy(sorted(found, key=lambda v: -v.version))

    async def get_assistant_version(
        self, organization_id: str, assistant_id: str, version: int
    ) -> AssistantVersion | None:
        found = await self.list_assistant_versions(organization_id, assistant_id)
        return next((v for v in found if v.version == version), None)

    async def get_tool_template(
        self, organization_id: str, template_id: str
    ) -> ToolTemplate | None:
        t = self._data.tool_templates.get(template_id)
        return None if t is None or t.organization_id != organization_id else copy.deepcopy(t)

    async def list_tool_templates(self, organization_id: str) -> list[ToolTemplate]:
        items = [
            t for t in self._data.tool_templates.values() if t.organization_id == organization_id
        ]
        return copy.deepcopy(sorted(items, key=lambda t: (t.created_at, t.id)))

    async def get_analysis_template(
        self, organization_id: str, template_id: str
    ) -> AnalysisTemplate | None:
        t = self._data.analysis_templates.get(template_id)
        return None if t is None or t.organization_id != organization_id else copy.deepcopy(t)

    async def get_squad(self, organization_id: str, squad_id: str) -> Squad | None:
        squad = self._data.squads.get(squad_id)
        return None if squad is None or squad.organization_id != organization_id else squad

    async def get_knowledge_base(self, organization_id: str, base_id: str) -> KnowledgeBase | None:
        return _knowledge_base(self._data, organization_id, base_id)

    async def list_knowledge_bases(self, organization_id: str) -> list[KnowledgeBase]:
        items = [
            b for b in self._data.knowledge_bases.values() if b.organization_id == organization_id
        ]
        return copy.deepcopy(sorted(items, key=lambda b: (b.created_at, b.id)))

    async def get_knowledge_document(
        self, organization_id: str, document_id: str
    ) -> KnowledgeDocument | None:
        document = self._data.knowledge_documents.get(document_id)
        if document is None or document.organization_id != organization_id:
            return None
        return copy.deepcopy(document)

    async def list_knowledge_documents(
        self, organization_id: str, base_id: str
    ) -> list[KnowledgeDocument]:
        items = [
            d
            for d in self._data.knowledge_documents.values()
            if d.organization_id == organization_id and d.knowledge_base_id == base_id
        ]
        return copy.deepcopy(sorted(items, key=lambda d: (d.created_at, d.id)))

    async def knowledge_use(self, organization_id: str) -> KnowledgeUse:
        return _knowledge_use(self._data, organization_id)

    async def knowledge_chunks(
        self, organization_id: str, document_id: str
    ) -> list[KnowledgeChunk]:
        if await self.get_knowledge_document(organization_id, document_id) is None:
            return []
        chunks = self._data.knowledge_chunks.get(document_id, [])
        return sorted(chunks, key=lambda c: c.position)

    async def search_knowledge(
        self,
        organization_id: str,
        base_ids: Sequence[str],
        words: Sequence[str],
        limit: int,
    ) -> list[KnowledgeHit]:
        return _search_knowledge(self._data, organization_id, base_ids, words, limit)

    async def list_analysis_templates(self, organization_id: str) -> list[AnalysisTemplate]:
        items = [
            t
            for t in self._data.analysis_templates.values()
            if t.organization_id == organization_id
        ]
        return copy.deepcopy(sorted(items, key=lambda t: (t.created_at, t.id)))

    async def list_caller_memories(
        self, organization_id: str, party: str, limit: int
    ) -> list[CallerMemory]:
        found = [
            m
            for m in self._data.caller_memories
            if m.organization_id == organization_id and m.party == party
        ]
        return copy.deepcopy(sorted(found, key=lambda m: m.created_at, reverse=True)[:limit])

    async def get_caller_memory(
        self, organization_id: str, party: str, memory_id: str
    ) -> CallerMemory | None:
        for m in self._data.caller_memories:
            if (m.organization_id, m.party, m.id) == (organization_id, party, memory_id):
                return copy.deepcopy(m)
        return None

    async def get_call(self, organization_id: str | None, call_id: str) -> Call | None:
        c = self._data.calls.get(call_id)
        if c is None or (organization_id is not None and c.organization_id != organization_id):
            return None
        return copy.deepcopy(c)

    async def list_calls(self, query: CallQuery) -> CallPage:
        calls = [
            c
            for c in self._data.calls.values()
            if c.organization_id == query.organization_id
            and (query.status is None or c.status is query.status)
            and (query.created.start is None or c.created_at >= query.created.start)
            and (query.created.end is None or c.created_at <= query.created.end)
            and (query.campaign_id is None or c.campaign_id == query.campaign_id)
            and (query.include_tests or c.test_run_id is None)
        ]
        calls.sort(key=lambda c: (c.created_at, c.seq), reverse=True)
        total = len(calls)
        if (after := query.after) is not None:
            calls = [c for c in calls if (c.created_at, c.seq) < (after.created_at, after.seq)]
        page = calls[query.offset : query.offset + query.limit]
        return CallPage(copy.deepcopy(page), total)

    async def list_active_calls(self, owner_node: str | None = None) -> list[Call]:
        return [
            copy.deepcopy(c)
            for c in self._data.calls.values()
            if c.status.active and owner_node in (None, c.owner_node)
        ]

    async def scheduled_due_organizations(self, now: datetime) -> list[str]:
        return list(dict.fromkeys(c.organization_id for c in _due(self._data.calls.values(), now)))

    async def list_nodes(self) -> list[NodeLease]:
        return sorted(self._data.nodes.values(), key=lambda n: n.id)

    async def list_messages(self, call_id: str) -> list[CallMessage]:
        return [copy.deepcopy(m) for m in self._data.messages if m.call_id == call_id]

    async def list_events(self, call_id: str, after_seq: int = 0) -> list[CallEvent]:
        return [
            copy.deepcopy(e)
            for e in self._data.events
            if e.call_id == call_id and e.seq > after_seq
        ]

    async def list_webhook_endpoints(
        self, organization_id: str, assistant_id: str | None = None, event_type: str | None = None
    ) -> list[WebhookEndpoint]:
        found = [
            e
            for e in self._data.webhook_endpoints.values()
            if e.organization_id == organization_id
            and (event_type is None or e.wants(assistant_id, event_type))
        ]
        return copy.deepcopy(sorted(found, key=lambda e: (e.created_at, e.id)))

    def outbox(self, claimer: str = "") -> MemoryOutbox:
        return MemoryOutbox(self)

    def mailbox(self) -> None:
        return None

    @property
    def deliveries(self) -> InMemoryOutbox:
        """The committed outbox rows (for assertions)."""
        return self._data.outbox
