from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from fakes.memory_outbox import DeliveryState, InMemoryOutbox
from voicedock.domain.webhooks import Delivery, DeliveryCaps, generate_secret
from voicedock.egress import Egress, EgressPolicy
from voicedock.webhooks import events
from voicedock.webhooks.outbox import enqueue_event
from voicedock.webhooks.retry import RetryPolicy
from voicedock.webhooks.worker import DeliveryWorker, WorkerSettings

from .receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

LAB = Egress(EgressPolicy(allow_loopback=True))
FAST = WorkerSettings(
    concurrency=4,
    request_timeout=2.0,
    connect_timeout=1.0,
    poll_interval=0.02,
    lease=timedelta(seconds=30),
    retry=RetryPolicy(
        first_delay=timedelta(milliseconds=50), factor=2.0, max_delay=timedelta(milliseconds=200)
    ),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def secret() -> str:
    return generate_secret()


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[Receiver]:
    receiver = Receiver(secret)
    await receiver.start()
    yield receiver
    if receiver.hold is not None:
        receiver.hold.set()
    await receiver.stop()


def outbox_for(url: str, secret: str) -> InMemoryOutbox:
    outbox = InMemoryOutbox()
    outbox.add_endpoint("ep1", url, secret)
    return outbox


async def enqueue_status(outbox: InMemoryOutbox, call_id: str = "call-1") -> str:
    payload = events.status_update(call_id, "in-progress", at=utcnow())
    return await enqueue_event(outbox, ["ep1"], payload)


def delivered(outbox: InMemoryOutbox) -> int:
    return len(outbox.by_state(DeliveryState.DELIVERED))


async def test_delivers_a_signed_event(receiver: Receiver, secret: str) -> None:
    outbox = outbox_for(receiver.url, secret)
    msg_id = await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST) as worker:
        worker.notify()
        await wait_until(lambda: delivered(outbox) == 1)
    (request,) = receiver.requests
    assert receiver.rejected == 0
    assert request.msg_id == msg_id
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"].startswith("voicedock-webhooks/")
    assert json.loads(request.body)["type"] == "status-update"
    assert abs(int(request.timestamp) - time.time()) < 5
    assert receiver.accepted == {msg_id: 1}


async def test_receiver_down_then_up_gets_every_event_exactly_once(secret: str) -> None:
    port = unused_port()
    outbox = outbox_for(f"http://127.0.0.1:{port}/hook", secret)
    msg_ids = [await enqueue_status(outbox, f"call-{n}") for n in range(6)]
    receiver = Receiver(secret)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: all(r.attempts >= 2 for r in outbox.records.values()))
        assert delivered(outbox) == 0
        errors = {r.last_error for r in outbox.records.values()}
        assert all(e is not None and e.startswith("request failed") for e in errors)
        await receiver.start(port)
        try:
            await wait_until(lambda: delivered(outbox) == len(msg_ids))
        finally:
            await receiver.stop()
    assert receiver.accepted == dict.fromkeys(msg_ids, 1)
    assert receiver.rejected == 0


async def test_same_webhook_id_and_fresh_signature_on_every_retry(
    receiver: Receiver, secret: str
) -> None:
    receiver.script = [500, 502, 504]
    outbox = outbox_for(receiver.url, secret)
    msg_id = await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: delivered(outbox) == 1)
    assert [r.msg_id for r in receiver.requests] == [msg_id] * 4
    assert receiver.rejected == 0  # every attempt was signed validly
    assert receiver.accepted == {msg_id: 1}
    (record,) = outbox.records.values()
    assert record.attempts == 4
    assert record.last_error == "HTTP 504"


async def test_429_retry_after_seconds_is_honoured(receiver: Receiver, secret: str) -> None:
    receiver.script = [web.Response(status=429, headers={"Retry-After": "1"})]
    outbox = outbox_for(receiver.url, secret)
    await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: delivered(outbox) == 1, timeout=5)
    first, second = receiver.requests
    # the fast backoff would have retried after ~50 ms
    assert second.at - first.at >= 0.9


async def test_503_retry_after_http_date_is_honoured(receiver: Receiver, secret: str) -> None:
    later = utcnow() + timedelta(hours=2)
    receiver.script = [
        web.Response(
            status=503, headers={"Retry-After": later.strftime("%a, %d %b %Y %H:%M:%S GMT")}
        )
    ]
    outbox = outbox_for(receiver.url, secret)
    await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: next(iter(outbox.records.values())).attempts == 1)
        await asyncio.sleep(0.3)
    (record,) = outbox.records.values()
    assert len(receiver.requests) == 1
    assert abs((record.next_attempt_at - later).total_seconds()) < 2


async def test_410_disables_the_endpoint(receiver: Receiver, secret: str) -> None:
    receiver.script = [410]
    outbox = outbox_for(receiver.url, secret)
    await enqueue_status(outbox, "call-1")
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST) as worker:
        await wait_until(lambda: len(outbox.by_state(DeliveryState.DEAD)) == 1)
        assert not outbox.endpoints["ep1"].enabled
        await enqueue_status(outbox, "call-2")
        worker.notify()
        await asyncio.sleep(0.3)
    assert len(receiver.requests) == 1
    assert outbox.by_state(DeliveryState.DEAD)[0].last_error == "HTTP 410: endpoint gone"


async def test_redirects_are_not_followed(receiver: Receiver, secret: str) -> None:
    receiver.script = [web.Response(status=307, headers={"Location": "/elsewhere"})]
    outbox = outbox_for(receiver.url, secret)
    await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: delivered(outbox) == 1)
    assert receiver.redirect_target_hits == 0
    assert len(receiver.requests) == 2  # the redirect counted as a failure, then a retry


async def test_worker_restarted_mid_retry_still_delivers(receiver: Receiver, secret: str) -> None:
    receiver.script = [500]
    outbox = outbox_for(receiver.url, secret)
    msg_id = await enqueue_status(outbox)
    slow_retry = WorkerSettings(
        poll_interval=0.02, retry=RetryPolicy(first_delay=timedelta(hours=1))
    )
    async with DeliveryWorker(outbox, egress=LAB, settings=slow_retry):
        await wait_until(lambda: next(iter(outbox.records.values())).attempts == 1)
    (record,) = outbox.records.values()
    assert record.state is DeliveryState.PENDING
    # the "restart": the state lives in the outbox; make the retry due now
    record.next_attempt_at = utcnow()
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: delivered(outbox) == 1)
    assert [r.msg_id for r in receiver.requests] == [msg_id, msg_id]
    assert receiver.accepted == {msg_id: 1}


async def test_worker_stopped_mid_request_is_resumed_after_the_lease(
    receiver: Receiver, secret: str
) -> None:
    receiver.hold = asyncio.Event()
    outbox = outbox_for(receiver.url, secret)
    msg_id = await enqueue_status(outbox)
    short_lease = WorkerSettings(poll_interval=0.02, lease=timedelta(milliseconds=300))
    async with DeliveryWorker(outbox, egress=LAB, settings=short_lease):
        await wait_until(lambda: receiver.in_flight == 1)
    assert delivered(outbox) == 0
    receiver.hold.set()
    async with DeliveryWorker(outbox, egress=LAB, settings=short_lease):
        await wait_until(lambda: delivered(outbox) == 1)
    assert receiver.accepted == {msg_id: 1}


async def test_concurrency_is_bounded(receiver: Receiver, secret: str) -> None:
    receiver.hold = asyncio.Event()
    outbox = outbox_for(receiver.url, secret)
    for n in range(10):
        await enqueue_status(outbox, f"call-{n}")
    uncapped = DeliveryCaps(per_endpoint=0, per_organization=0)  # the node's slots alone
    settings = WorkerSettings(concurrency=3, poll_interval=0.02, caps=uncapped)
    async with DeliveryWorker(outbox, egress=LAB, settings=settings):
        await wait_until(lambda: receiver.in_flight == 3)
        await asyncio.sleep(0.2)
        assert receiver.max_in_flight == 3
        receiver.hold.set()
        await wait_until(lambda: delivered(outbox) == 10)
    assert receiver.max_in_flight == 3


async def test_notify_while_every_slot_is_busy_does_not_starve_the_loop(
    receiver: Receiver, secret: str
) -> None:
    receiver.hold = asyncio.Event()
    outbox = outbox_for(receiver.url, secret)
    for n in range(3):
        await enqueue_status(outbox, f"call-{n}")
    settings = WorkerSettings(concurrency=1, poll_interval=0.02)
    async with DeliveryWorker(outbox, egress=LAB, settings=settings) as worker:
        await wait_until(lambda: receiver.in_flight == 1)
        worker.notify()  # with every slot busy this used to spin without ever yielding
        await asyncio.sleep(0.05)
        receiver.hold.set()
        await wait_until(lambda: delivered(outbox) == 3)


async def test_gives_up_three_days_after_enqueueing(receiver: Receiver, secret: str) -> None:
    receiver.script = [500]
    three_days_ago = utcnow() - timedelta(days=3, seconds=1)
    outbox = InMemoryOutbox(clock=lambda: three_days_ago)
    outbox.add_endpoint("ep1", receiver.url, secret)
    await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: len(outbox.by_state(DeliveryState.DEAD)) == 1)
    assert len(receiver.requests) == 1


async def test_loopback_url_is_refused_at_send_time(receiver: Receiver, secret: str) -> None:
    outbox = outbox_for(receiver.url, secret)
    await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=Egress(), settings=FAST):
        await wait_until(lambda: next(iter(outbox.records.values())).attempts >= 1)
    (record,) = outbox.records.values()
    assert record.last_error == "URL refused: loopback address"
    assert receiver.requests == []


async def test_dns_rebinding_between_check_and_connect_is_refused(
    receiver: Receiver, secret: str
) -> None:
    assert receiver.server is not None
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding_dns(host: str, port: int) -> list[str]:
        return next(answers, ["127.0.0.1"])

    outbox = outbox_for(f"http://hooks.example.com:{receiver.server.port}/hook", secret)
    await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=Egress(resolver=rebinding_dns), settings=FAST):
        await wait_until(lambda: next(iter(outbox.records.values())).attempts >= 1)
    (record,) = outbox.records.values()
    assert record.last_error is not None
    assert record.last_error == "URL refused: loopback address"
    assert receiver.requests == []


class FlakyOutbox(InMemoryOutbox):
    """Fails its first claims, like a database that is briefly unavailable."""

    failures: int = 2

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, *, caps: DeliveryCaps
    ) -> list[Delivery]:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database unavailable")
        return await super().claim_due(now, limit, lease, caps=caps)


async def test_store_outage_does_not_stop_the_worker(receiver: Receiver, secret: str) -> None:
    outbox = FlakyOutbox()
    outbox.add_endpoint("ep1", receiver.url, secret)
    await enqueue_status(outbox)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: delivered(outbox) == 1)
    assert outbox.failures == 0


class CountingOutbox(InMemoryOutbox):
    """Counts the claims (each a write transaction of several statements in a database)."""

    claims: int = 0

    async def claim_due(
        self, now: datetime, limit: int, lease: timedelta, *, caps: DeliveryCaps
    ) -> list[Delivery]:
        self.claims += 1
        return await super().claim_due(now, limit, lease, caps=caps)


async def test_one_claim_per_delivery_when_events_come_one_at_a_time(
    receiver: Receiver, secret: str
) -> None:
    """An event enqueued and notified alone is claimed once: no second claim right after a
    claim that was not a full batch, none when a delivery ends that held nothing back."""
    outbox = CountingOutbox()
    outbox.add_endpoint("ep1", receiver.url, secret)
    lazy = WorkerSettings(poll_interval=30.0)
    async with DeliveryWorker(outbox, egress=LAB, settings=lazy) as worker:
        await wait_until(lambda: outbox.claims == 1)  # the first look, with nothing due
        for n in range(10):
            await enqueue_status(outbox, f"call-{n}")
            worker.notify()
            await wait_until(lambda n=n: delivered(outbox) == n + 1, timeout=2)
        await asyncio.sleep(0.05)
    assert outbox.claims == 11


async def test_a_delivery_held_back_by_its_endpoints_cap_goes_when_a_slot_frees(
    receiver: Receiver, secret: str
) -> None:
    """Five due to one endpoint capped at two requests: the ones held back go as the first
    end, not at the next poll."""
    outbox = CountingOutbox()
    outbox.add_endpoint("ep1", receiver.url, secret)
    for n in range(5):
        await enqueue_status(outbox, f"call-{n}")
    capped = WorkerSettings(
        poll_interval=30.0, caps=DeliveryCaps(per_endpoint=2, per_organization=0)
    )
    async with DeliveryWorker(outbox, egress=LAB, settings=capped):
        await wait_until(lambda: delivered(outbox) == 5, timeout=2)
    assert receiver.max_in_flight <= 2


async def test_aclose_is_idempotent_and_a_worker_starts_once(secret: str) -> None:
    outbox = outbox_for("http://127.0.0.1:9/hook", secret)
    worker = DeliveryWorker(outbox, egress=LAB, settings=FAST)
    await worker.aclose()  # never started: fine
    worker = DeliveryWorker(outbox, egress=LAB, settings=FAST)
    async with worker:
        pass
    await worker.aclose()
    await worker.aclose()
    with pytest.raises(RuntimeError, match="once"):
        await worker.__aenter__()


async def test_run_can_be_owned_by_an_outer_task_group(receiver: Receiver, secret: str) -> None:
    outbox = outbox_for(receiver.url, secret)
    await enqueue_status(outbox)
    worker = DeliveryWorker(outbox, egress=LAB, settings=FAST)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(worker.run())
        await wait_until(lambda: delivered(outbox) == 1)
        task.cancel()
    assert task.cancelled()


async def test_notify_wakes_the_worker_before_the_next_poll(
    receiver: Receiver, secret: str
) -> None:
    outbox = outbox_for(receiver.url, secret)
    lazy = WorkerSettings(poll_interval=30.0)
    async with DeliveryWorker(outbox, egress=LAB, settings=lazy) as worker:
        await asyncio.sleep(0.05)  # the worker is now asleep with nothing due
        await enqueue_status(outbox)
        worker.notify()
        await wait_until(lambda: delivered(outbox) == 1, timeout=2)


async def test_logs_hold_no_transcript_query_or_secret(
    receiver: Receiver, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="voicedock.webhooks")
    receiver.script = [500]
    outbox = outbox_for(receiver.url + "?token=abc123", secret)
    payload = events.transcript("call-1", "user", "my pin is 4321", at=utcnow())
    await enqueue_event(outbox, ["ep1"], payload)
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: delivered(outbox) == 1)
    assert "webhook" in caplog.text
    for sensitive in ("4321", "abc123", secret.removeprefix("whsec_")):
        assert sensitive not in caplog.text


async def test_rotation_signs_with_old_and_new_secret(receiver: Receiver, secret: str) -> None:
    new_secret = generate_secret()
    delivery = Delivery(
        id="dlv_1",
        endpoint_id="ep1",
        url=receiver.url,
        secret=new_secret,
        event_type="transcript",
        payload=b"{}",
        msg_id="msg_rotation",
        attempts=0,
        enqueued_at=utcnow(),
        previous_secrets=(secret,),
    )

    delivered_ids: list[str] = []

    class OneShot(InMemoryOutbox):
        claimed = False

        async def claim_due(
            self, now: datetime, limit: int, lease: timedelta, *, caps: DeliveryCaps
        ) -> list[Delivery]:
            first, self.claimed = not self.claimed, True
            return [delivery] if first else []

        async def mark_delivered(self, delivery_id: str) -> None:
            delivered_ids.append(delivery_id)

    outbox = OneShot()
    async with DeliveryWorker(outbox, egress=LAB, settings=FAST):
        await wait_until(lambda: delivered_ids == ["dlv_1"])
    # the receiver still holds the old secret and accepts the old-key signature
    assert receiver.accepted == {"msg_rotation": 1}
    assert len(receiver.requests[0].headers["webhook-signature"].split()) == 2
