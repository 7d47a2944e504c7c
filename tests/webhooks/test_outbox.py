from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from fakes.memory_outbox import DeliveryState, InMemoryOutbox
from voicedock.domain.webhooks import DeliveryCaps
from voicedock.webhooks import events
from voicedock.webhooks.outbox import enqueue_event

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
UNCAPPED = DeliveryCaps(per_endpoint=0, per_organization=0)


def make_outbox() -> InMemoryOutbox:
    outbox = InMemoryOutbox(clock=lambda: T0)
    outbox.add_endpoint("ep1", "https://a.example.com/hook", "whsec_x")
    outbox.add_endpoint("ep2", "https://b.example.com/hook", "whsec_y")
    return outbox


async def test_enqueue_event_fans_out_with_one_message_id() -> None:
    outbox = make_outbox()
    payload = events.status_update("call-1", "ended", at=T0)
    msg_id = await enqueue_event(outbox, ["ep1", "ep2"], payload)
    claimed = await outbox.claim_due(T0, 10, LEASE, caps=UNCAPPED)
    assert {d.endpoint_id for d in claimed} == {"ep1", "ep2"}
    assert {d.msg_id for d in claimed} == {msg_id}
    assert json.loads(claimed[0].payload) == payload
    assert claimed[0].event_type == "status-update"
    assert {d.url for d in claimed} == {"https://a.example.com/hook", "https://b.example.com/hook"}


async def test_enqueue_is_idempotent_per_endpoint_and_message() -> None:
    outbox = make_outbox()
    await outbox.enqueue("ep1", "transcript", b"{}", "msg_1")
    await outbox.enqueue("ep1", "transcript", b"{}", "msg_1")
    assert len(outbox.records) == 1


async def test_enqueue_to_unknown_endpoint_fails() -> None:
    with pytest.raises(KeyError):
        await make_outbox().enqueue("nope", "transcript", b"{}", "msg_1")


async def test_claim_leases_rows_until_the_lease_expires() -> None:
    outbox = make_outbox()
    await outbox.enqueue("ep1", "transcript", b"{}", "msg_1")
    assert len(await outbox.claim_due(T0, 10, LEASE, caps=UNCAPPED)) == 1
    assert await outbox.claim_due(T0 + timedelta(seconds=59), 10, LEASE, caps=UNCAPPED) == []
    again = await outbox.claim_due(T0 + LEASE, 10, LEASE, caps=UNCAPPED)
    assert [d.msg_id for d in again] == ["msg_1"]


async def test_claim_respects_limit_and_due_order() -> None:
    outbox = make_outbox()
    for n in range(5):
        await outbox.enqueue("ep1", "transcript", b"{}", f"msg_{n}")
    outbox.records["dlv_1"].next_attempt_at = T0 + timedelta(seconds=1)
    first = await outbox.claim_due(T0, 2, LEASE, caps=UNCAPPED)
    assert [d.msg_id for d in first] == ["msg_1", "msg_2"]
    rest = await outbox.claim_due(T0 + timedelta(seconds=1), 10, LEASE, caps=UNCAPPED)
    assert [d.msg_id for d in rest] == ["msg_3", "msg_4", "msg_0"]


async def test_failed_delivery_waits_for_its_next_attempt_and_counts_attempts() -> None:
    outbox = make_outbox()
    await outbox.enqueue("ep1", "transcript", b"{}", "msg_1")
    (delivery,) = await outbox.claim_due(T0, 10, LEASE, caps=UNCAPPED)
    await outbox.mark_failed(delivery.id, T0 + timedelta(seconds=5), "HTTP 500")
    assert await outbox.claim_due(T0 + timedelta(seconds=4), 10, LEASE, caps=UNCAPPED) == []
    (retry,) = await outbox.claim_due(T0 + timedelta(seconds=5), 10, LEASE, caps=UNCAPPED)
    assert retry.attempts == 1
    assert retry.msg_id == delivery.msg_id
    await outbox.mark_delivered(retry.id)
    record = outbox.records[retry.id]
    assert record.state is DeliveryState.DELIVERED
    assert record.attempts == 2
    assert await outbox.claim_due(T0 + timedelta(days=1), 10, LEASE, caps=UNCAPPED) == []


async def test_giving_up_marks_dead() -> None:
    outbox = make_outbox()
    await outbox.enqueue("ep1", "transcript", b"{}", "msg_1")
    (delivery,) = await outbox.claim_due(T0, 10, LEASE, caps=UNCAPPED)
    await outbox.mark_failed(delivery.id, None, "HTTP 500")
    assert outbox.by_state(DeliveryState.DEAD)[0].last_error == "HTTP 500"
    assert await outbox.claim_due(T0 + timedelta(days=10), 10, LEASE, caps=UNCAPPED) == []


async def test_disabled_endpoint_gets_nothing_more() -> None:
    outbox = make_outbox()
    await outbox.enqueue("ep1", "transcript", b"{}", "msg_1")
    await outbox.enqueue("ep2", "transcript", b"{}", "msg_1")
    await outbox.disable_endpoint("ep1")
    claimed = await outbox.claim_due(T0, 10, LEASE, caps=UNCAPPED)
    assert [d.endpoint_id for d in claimed] == ["ep2"]
