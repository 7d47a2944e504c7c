"""The audit trail in the store, on SQLite and PostgreSQL: events listed per organization,
newest first, by their filters and a keyset cursor; a transaction that rolls back leaves no
event; retention deletes what is older than ``audit_days`` and nothing newer."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from store.builders import at, seed_org
from voicedock.config import RetentionSettings
from voicedock.domain.audit import ActorKind, AuditEvent
from voicedock.organizations.retention import apply_retention
from voicedock.store import Store
from voicedock.store.base import AuditQuery, CallCursor, TimeRange

pytestmark = pytest.mark.unit


def event(org_id: str, action: str, seconds: float, **extra: object) -> AuditEvent:
    return AuditEvent(
        organization_id=org_id,
        actor=str(extra.pop("actor", "key-1")),
        actor_kind=ActorKind.API_KEY,
        action=action,
        resource_type=action.split(".")[0],
        resource_id=str(extra.pop("resource_id", "r-1")),
        address="192.0.2.0",
        detail={"mode": "warm"},
        created_at=at(seconds),
    )


async def append(store: Store, *events: AuditEvent) -> None:
    async with store.transaction() as tx:
        for e in events:
            await tx.insert_audit_event(e)


async def test_listed_per_organization_newest_first_by_filters(store: Store) -> None:
    acme, globex = await seed_org(store), await seed_org(store)
    same_moment = [event(acme.id, "assistant.created", 10, resource_id=f"a{i}") for i in range(3)]
    await append(
        store,
        event(acme.id, "api_key.created", 0, actor="key-2"),
        *same_moment,
        event(acme.id, "assistant.updated", 20, resource_id="a0"),
        event(globex.id, "assistant.created", 30),
    )
    everything = await store.list_audit_events(AuditQuery(acme.id))
    assert everything.total == 5
    listed = [(e.action, e.resource_id) for e in everything.events]
    assert listed == [
        ("assistant.updated", "a0"),
        ("assistant.created", "a2"),  # the same moment: the later appended first
        ("assistant.created", "a1"),
        ("assistant.created", "a0"),
        ("api_key.created", "r-1"),
    ]
    first = everything.events[0]
    assert (first.actor_kind, first.address, first.detail) == (
        ActorKind.API_KEY,
        "192.0.2.0",
        {"mode": "warm"},
    )
    assert first.created_at == at(20)

    def ids(page: list[AuditEvent]) -> list[str | None]:
        return [e.resource_id for e in page]

    about_a0 = await store.list_audit_events(AuditQuery(acme.id, resource_id="a0"))
    assert [e.action for e in about_a0.events] == ["assistant.updated", "assistant.created"]
    by_actor = await store.list_audit_events(AuditQuery(acme.id, actor="key-2"))
    assert [e.action for e in by_actor.events] == ["api_key.created"]
    typed = await store.list_audit_events(AuditQuery(acme.id, resource_type="assistant"))
    assert typed.total == 4
    window = AuditQuery(acme.id, created=TimeRange(at(0), at(20)))
    assert ids((await store.list_audit_events(window)).events) == ["a2", "a1", "a0"]

    # Keyset paging through events of the same moment: no duplicate, no gap.
    query = AuditQuery(acme.id, limit=2, action="assistant.created")
    seen: list[str | None] = []
    while True:
        page = (await store.list_audit_events(query)).events
        seen += ids(page)
        if len(page) < query.limit:
            break
        last = page[-1]
        query = dataclasses.replace(query, after=CallCursor(last.created_at, last.seq))
    assert seen == ["a2", "a1", "a0"]
    assert (await store.list_audit_events(AuditQuery(globex.id))).total == 1


async def test_a_rolled_back_change_leaves_no_event(store: Store) -> None:
    org = await seed_org(store)

    async def failing_change() -> None:
        async with store.transaction() as tx:
            await tx.insert_audit_event(event(org.id, "assistant.deleted", 0))
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    assert (await store.list_audit_events(AuditQuery(org.id))).events == []


async def test_retention_deletes_events_older_than_audit_days(store: Store) -> None:
    org = await seed_org(store)
    now = at(0) + timedelta(days=400)
    old = [event(org.id, "call.listen", s, resource_id=f"old{s}") for s in range(5)]
    kept = event(org.id, "call.listen", 0, resource_id="kept")
    kept.created_at = now - timedelta(days=364)
    await append(store, *old, kept)

    off = await apply_retention(store, RetentionSettings(audit_days=0), now=now, batch=2)
    assert off.audit_events == 0  # 0: kept forever
    done = await apply_retention(store, RetentionSettings(), now=now, batch=2)  # 365 days
    assert done.audit_events == 5
    left = await store.list_audit_events(AuditQuery(org.id))
    assert [e.resource_id for e in left.events] == ["kept"]
