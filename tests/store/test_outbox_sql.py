"""The SQL webhook outbox: enqueue with the state change, leases, retries, endpoints."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from voicedock.domain.records import CallStatus, NodeLease, utcnow
from voicedock.domain.webhooks import DeliveryCaps, WebhookEndpoint
from voicedock.store import Store, StoreError
from voicedock.webhooks.outbox import enqueue_event

from .builders import insert_call, make_call, new_id, seed_assistant, seed_org

pytestmark = pytest.mark.unit

LEASE = timedelta(seconds=60)
UNCAPPED = DeliveryCaps(per_endpoint=0, per_organization=0)
BODY = b'{"type": "status-update", "b": 1, "a": [1, 2]}'  # odd key order and spacing on purpose


async def seed_endpoint(store: Store, org_id: str, **fields: object) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        organization_id=org_id,
        url="https://hooks.example.com/voicedock",
        secret="whsec_test",
        **fields,  # type: ignore[arg-type]
    )
    async with store.transaction() as tx:
        await tx.insert_webhook_endpoint(endpoint)
    return endpoint


async def enqueue(store: Store, endpoint_id: str, msg_id: str, body: bytes = BODY) -> None:
    async with store.transaction() as tx:
        await tx.enqueue(endpoint_id, "status-update", body, msg_id)


async def test_event_commits_with_the_state_change_or_not_at_all(store: Store) -> None:
    org = await seed_org(store)
    endpoint = await seed_endpoint(store, org.id)
    call = await insert_call(store, make_call(org.id))

    async def change_then_fail() -> None:
        async with store.transaction() as tx:
            locked = await tx.get_call_for_update(call.id)
            assert locked is not None
            locked.status = CallStatus.IN_PROGRESS
            await tx.update_call(locked)
            await enqueue_event(tx, [endpoint.id], {"type": "status-update", "call_id": call.id})
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await change_then_fail()
    outbox = store.outbox()
    assert await outbox.claim_due(utcnow() + timedelta(seconds=1), 10, LEASE, caps=UNCAPPED) == []

    async with store.transaction() as tx:
        msg_id = await enqueue_event(tx, [endpoint.id], {"type": "status-update", "call_id": "c"})
    (delivery,) = await outbox.claim_due(utcnow() + timedelta(seconds=1), 10, LEASE, caps=UNCAPPED)
    assert delivery.msg_id == msg_id
    assert (delivery.url, delivery.secret) == (endpoint.url, endpoint.secret)
    assert delivery.attempts == 0


async def test_payload_bytes_round_trip_exactly_and_enqueue_is_idempotent(store: Store) -> None:
    org = await seed_org(store)
    endpoint = await seed_endpoint(store, org.id)
    await enqueue(store, endpoint.id, "msg_1")
    await enqueue(store, endpoint.id, "msg_1")  # replayed state change
    deliveries = await store.outbox().claim_due(
        utcnow() + timedelta(seconds=1), 10, LEASE, caps=UNCAPPED
    )
    assert len(deliveries) == 1
    assert deliveries[0].payload == BODY
    assert deliveries[0].event_type == "status-update"


async def test_enqueue_to_unknown_endpoint_fails(store: Store) -> None:
    with pytest.raises(StoreError):
        await enqueue(store, "whe_missing", "msg_1")


async def test_claims_lease_rows_until_the_lease_runs_out(store: Store) -> None:
    org = await seed_org(store)
    endpoint = await seed_endpoint(store, org.id)
    for n in range(3):
        await enqueue(store, endpoint.id, f"msg_{n}")
    outbox = store.outbox()
    now = utcnow() + timedelta(seconds=1)
    first = await outbox.claim_due(now, 2, LEASE, caps=UNCAPPED)
    assert [d.msg_id for d in first] == ["msg_0", "msg_1"]
    second = await outbox.claim_due(now, 10, LEASE, caps=UNCAPPED)
    assert [d.msg_id for d in second] == ["msg_2"]
    assert (
        await outbox.claim_due(now + LEASE - timedelta(seconds=1), 10, LEASE, caps=UNCAPPED) == []
    )
    expired = await outbox.claim_due(now + LEASE, 10, LEASE, caps=UNCAPPED)
    assert sorted(d.msg_id for d in expired) == ["msg_0", "msg_1", "msg_2"]
    assert await outbox.claim_due(now, 0, LEASE, caps=UNCAPPED) == []


async def test_retry_schedule_attempt_count_and_giving_up(store: Store) -> None:
    org = await seed_org(store)
    endpoint = await seed_endpoint(store, org.id)
    await enqueue(store, endpoint.id, "msg_1")
    outbox = store.outbox()
    now = utcnow() + timedelta(seconds=1)
    (delivery,) = await outbox.claim_due(now, 10, LEASE, caps=UNCAPPED)
    await outbox.mark_failed(delivery.id, now + timedelta(seconds=30), "HTTP 503 " + "x" * 5000)
    assert await outbox.claim_due(now + timedelta(seconds=29), 10, LEASE, caps=UNCAPPED) == []
    (again,) = await outbox.claim_due(now + timedelta(seconds=30), 10, LEASE, caps=UNCAPPED)
    assert again.id == delivery.id
    assert again.attempts == 1
    await outbox.mark_failed(again.id, None, "gave up")
    assert await outbox.claim_due(now + timedelta(days=30), 10, LEASE, caps=UNCAPPED) == []


async def test_delivered_rows_are_never_claimed_again(store: Store) -> None:
    org = await seed_org(store)
    endpoint = await seed_endpoint(store, org.id)
    await enqueue(store, endpoint.id, "msg_1")
    outbox = store.outbox()
    now = utcnow() + timedelta(seconds=1)
    (delivery,) = await outbox.claim_due(now, 10, LEASE, caps=UNCAPPED)
    await outbox.mark_delivered(delivery.id)
    assert await outbox.claim_due(now + timedelta(days=1), 10, LEASE, caps=UNCAPPED) == []


async def test_disabled_endpoint_gets_nothing_more(store: Store) -> None:
    org = await seed_org(store)
    gone = await seed_endpoint(store, org.id)
    kept = await seed_endpoint(store, org.id)
    await enqueue(store, gone.id, "msg_1")
    await enqueue(store, kept.id, "msg_1")
    outbox = store.outbox()
    await outbox.disable_endpoint(gone.id)
    claimed = await outbox.claim_due(utcnow() + timedelta(seconds=1), 10, LEASE, caps=UNCAPPED)
    assert [d.endpoint_id for d in claimed] == [kept.id]
    (stored,) = [e for e in await store.list_webhook_endpoints(org.id) if e.id == gone.id]
    assert stored.enabled is False


async def test_endpoint_fan_out_list(store: Store) -> None:
    org, other = await seed_org(store), await seed_org(store)
    assistant = await seed_assistant(store, org.id)
    everything = await seed_endpoint(store, org.id)
    reports_only = await seed_endpoint(store, org.id, event_types=["end-of-call-report"])
    for_assistant = await seed_endpoint(store, org.id, assistant_id=assistant.id)
    await seed_endpoint(store, org.id, enabled=False)
    await seed_endpoint(store, other.id)

    assert len(await store.list_webhook_endpoints(org.id)) == 4
    status = await store.list_webhook_endpoints(org.id, assistant.id, "status-update")
    assert [e.id for e in status] == [everything.id, for_assistant.id]
    report = await store.list_webhook_endpoints(org.id, None, "end-of-call-report")
    assert [e.id for e in report] == [everything.id, reports_only.id]
    assert reports_only.event_types == ["end-of-call-report"]

    async with store.transaction() as tx:
        assert await tx.delete_webhook_endpoint(other.id, everything.id) is False
        assert await tx.delete_webhook_endpoint(org.id, everything.id) is True
    assert len(await store.list_webhook_endpoints(org.id)) == 3


async def test_concurrent_claims_never_hand_out_a_row_twice(store: Store) -> None:
    org = await seed_org(store)
    endpoint = await seed_endpoint(store, org.id)
    for n in range(30):
        await enqueue(store, endpoint.id, f"msg_{n:02d}")
    workers = [store.outbox() for _ in range(4)]
    now = utcnow() + timedelta(seconds=1)
    batches = await asyncio.gather(
        *(w.claim_due(now, 5, LEASE, caps=UNCAPPED) for w in workers * 3)
    )
    claimed = [d.msg_id for batch in batches for d in batch]
    assert len(claimed) == len(set(claimed)) == 30


async def test_concurrent_claims_hold_the_caps_and_share_fairly(store: Store) -> None:
    """Workers of several nodes claiming at once: no row twice, never more in flight than the
    caps per endpoint and per organization, and another organization's delivery is claimed
    beside a backlog."""
    busy, quiet = await seed_org(store), await seed_org(store)
    endpoints = [await seed_endpoint(store, busy.id) for _ in range(3)]
    for n in range(10):
        for endpoint in endpoints:
            await enqueue(store, endpoint.id, f"msg_{n:02d}")
    other = await seed_endpoint(store, quiet.id)
    await enqueue(store, other.id, "msg_quiet")
    caps = DeliveryCaps(per_endpoint=2, per_organization=4)
    workers = [store.outbox() for _ in range(4)]
    now = utcnow() + timedelta(seconds=1)
    batches = await asyncio.gather(*(w.claim_due(now, 3, LEASE, caps=caps) for w in workers * 3))
    claimed = [d for batch in batches for d in batch]
    assert len({d.id for d in claimed}) == len(claimed)
    busy_ids = {e.id for e in endpoints}
    assert sum(d.endpoint_id in busy_ids for d in claimed) == 4
    assert max(sum(d.endpoint_id == e.id for d in claimed) for e in endpoints) <= 2
    assert [d.msg_id for d in claimed if d.endpoint_id == other.id] == ["msg_quiet"]
    # Each endpoint's deliveries were claimed oldest first.
    for endpoint in endpoints:
        taken = sorted(d.msg_id for d in claimed if d.endpoint_id == endpoint.id)
        assert taken == [f"msg_{n:02d}" for n in range(len(taken))]
    # A delivered one frees its organization's place: the next claim takes one more of it.
    done = next(d for d in claimed if d.endpoint_id in busy_ids)
    await workers[0].mark_delivered(done.id)
    (following,) = await workers[1].claim_due(now, 10, LEASE, caps=caps)
    assert following.endpoint_id in busy_ids


async def test_a_dead_nodes_claims_neither_hold_the_caps_nor_keep_their_rows(store: Store) -> None:
    """Node a is killed mid-delivery holding the endpoint's two slots: while its node lease
    lives, node b waits (they may still be in flight); once it ran out, b sends a's two
    deliveries again and the event queued after them, not a webhook lease later."""
    org = await seed_org(store)
    endpoint = await seed_endpoint(store, org.id)
    for n in range(3):
        await enqueue(store, endpoint.id, f"msg_{n}")
    caps = DeliveryCaps(per_endpoint=2, per_organization=0)
    now = utcnow() + timedelta(seconds=1)
    async with store.transaction() as tx:
        for node, lives in (("a", timedelta(seconds=10)), ("b", timedelta(hours=1))):
            await tx.put_node(NodeLease(node, f"host-{node}", 1, "", "run", now, now + lives))
    a, b = store.outbox("a"), store.outbox("b")
    assert {d.msg_id for d in await a.claim_due(now, 10, LEASE, caps=caps)} == {"msg_0", "msg_1"}
    assert await b.claim_due(now, 10, LEASE, caps=caps) == []  # a lives: its two are in flight
    later = now + timedelta(seconds=11)  # a's node lease ran out, its webhook leases did not
    again = await b.claim_due(later, 10, LEASE, caps=caps)
    assert sorted(d.msg_id for d in again) == ["msg_0", "msg_1"]
    assert await a.claim_due(later, 10, LEASE, caps=caps) == []  # b's claims are b's now
    await b.mark_delivered(again[0].id)
    (last,) = await b.claim_due(later, 10, LEASE, caps=caps)
    assert last.msg_id == "msg_2"
