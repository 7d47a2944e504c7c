"""The delivery worker: claims due deliveries from the outbox and POSTs them.

Lifecycle (the worker owns its HTTP session and the tasks that use it)::

    async with DeliveryWorker(outbox, egress=Egress()) as worker:
        ...                     # the engine enqueues in its transactions, then worker.notify()

or, inside an application's own TaskGroup, ``tg.create_task(worker.run())`` and cancel it.

Per attempt: the URL is checked against the SSRF policy again, the body is signed with a
fresh ``webhook-timestamp`` and the unchanged ``webhook-id``, redirects are not followed.
2xx is delivered; 410 disables the endpoint; 429/503 honour ``Retry-After``; anything else
(other statuses, timeouts, refused connections) is retried on the :class:`RetryPolicy`
schedule for up to three days. At most ``concurrency`` requests run at once on this node, and
nothing here is awaited by call handling, so a slow endpoint can never stall a call.

Fair between organizations: a claim takes what is due within ``caps`` (requests in flight per
endpoint and per organization, counted on every node) and the least busy organization's and
endpoint's first, so an endpoint that hangs until the timeout, or an organization with a
backlog, holds only its own share of the slots and delays only its own deliveries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Self

import aiohttp
import msgspec

from voicedock.aio import Closable, Supervisor
from voicedock.domain.webhooks import Delivery, DeliveryCaps, Outbox, redact
from voicedock.egress import Egress
from voicedock.errors import InvalidSecret, UnsafeUrl
from voicedock.webhooks.retry import RetryPolicy, parse_retry_after
from voicedock.webhooks.signing import sign

logger = logging.getLogger("voicedock.webhooks")

Clock = Callable[[], datetime]
# The trace context of a call's span, as headers (``calls/call_traces.py``), by call id.
TraceHeaders = Callable[[str], Mapping[str, str]]
USER_AGENT = "voicedock-webhooks/0.1"


class _AboutCall(msgspec.Struct):
    """What a delivery's payload says of its call (``webhooks/events.py``'s envelope)."""

    call_id: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    concurrency: int = 32  # requests in flight on this node
    caps: DeliveryCaps = field(default_factory=DeliveryCaps)  # per endpoint, organization
    batch_size: int = 32
    request_timeout: float = 15.0
    connect_timeout: float = 5.0
    # Longer than a request can take, so a live worker never loses its claim mid-request.
    lease: timedelta = timedelta(seconds=60)
    poll_interval: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one HTTP attempt came to; ``error`` is ``None`` on success."""

    error: str | None
    status: int | None = None
    retry_after: timedelta | None = None
    endpoint_gone: bool = False
    permanent: bool = False


class DeliveryWorker(Closable):
    def __init__(
        self,
        outbox: Outbox,
        *,
        egress: Egress,
        settings: WorkerSettings | None = None,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._outbox = outbox
        self._egress = egress  # every delivery's URL is checked, and connects, through it
        self._settings = settings or WorkerSettings()
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._to_endpoint: Counter[str] = Counter()  # this node's requests in flight, by endpoint
        # The last claim may have left due deliveries behind (every slot busy, or a full batch).
        self._limited = False
        self._tasks = Supervisor("webhook worker", logger)
        self._closed = False
        # With traces on ([telemetry]): a call's webhooks carry its span's ``traceparent``.
        self.trace_headers: TraceHeaders | None = None

    async def __aenter__(self) -> Self:
        if self._closed or self._tasks.running:
            raise RuntimeError("a DeliveryWorker can be started once")
        await self._tasks.start()
        self._tasks.spawn(self.run(), name="webhook-worker")
        return self

    def notify(self) -> None:
        """Something was enqueued: look for due deliveries now instead of at the next poll."""
        self._wake.set()

    async def aclose(self) -> None:
        """Stop claiming and abandon in-flight attempts (their leases expire and they are
        retried later, by this process after a restart or by another node). Idempotent."""
        self._closed = True
        await self._tasks.aclose()  # a crash was logged when it happened

    async def run(self) -> None:
        """Deliver until cancelled."""
        async with self._session() as session, asyncio.TaskGroup() as attempts:
            while True:
                claimed = await self._claim()
                for delivery in claimed:
                    self._in_flight += 1
                    self._to_endpoint[delivery.endpoint_id] += 1
                    attempts.create_task(self._attempt(session, delivery))
                if claimed and self._limited and self._in_flight < self._settings.concurrency:
                    continue  # a full batch: more may be due right away
                await self._sleep()

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[aiohttp.ClientSession]:
        timeout = aiohttp.ClientTimeout(
            total=self._settings.request_timeout, connect=self._settings.connect_timeout
        )
        # Every connection resolves through the guard; no cookies, no proxy from the
        # environment.
        async with self._egress.session(
            limit=self._settings.concurrency,
            timeout=timeout,
            headers={"User-Agent": USER_AGENT},
        ) as session:
            yield session

    async def _claim(self) -> list[Delivery]:
        # Cleared before claiming, so an enqueue during the claim is not missed; and also when
        # every slot is busy: a notify() then must not turn _sleep into a loop that never
        # yields (the finishing attempt sets the flag again).
        self._wake.clear()
        free = self._settings.concurrency - self._in_flight
        self._limited = True  # until a claim says otherwise
        if free <= 0:
            return []
        limit = min(free, self._settings.batch_size)
        try:
            claimed = await self._outbox.claim_due(
                self._clock(), limit, self._settings.lease, caps=self._settings.caps
            )
        except Exception:  # a store outage must not stop the worker
            logger.warning("webhook outbox claim failed; retrying", exc_info=True)
            return []
        self._limited = len(claimed) >= limit
        return claimed

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.poll_interval):
                await self._wake.wait()

    async def _attempt(self, session: aiohttp.ClientSession, delivery: Delivery) -> None:
        try:
            result = await self._post(session, delivery)
            await self._record(delivery, result)
        except Exception:  # one bad delivery must not end the others
            logger.exception("webhook delivery %s crashed; its lease will expire", delivery.id)
        finally:
            if self._held_back_by(delivery):
                self._wake.set()
            self._in_flight -= 1
            self._to_endpoint[delivery.endpoint_id] -= 1
            if self._to_endpoint[delivery.endpoint_id] <= 0:
                del self._to_endpoint[delivery.endpoint_id]

    def _held_back_by(self, delivery: Delivery) -> bool:
        """Whether a delivery due now may have waited for this one's slot: the last claim
        was limited by this node's slots or its batch, or this delivery's endpoint (or, as far
        as this node can tell, its organization) was at its cap. Only then is a claim worth
        its statements when it ends; what other nodes' requests held back is found by the
        next poll."""
        caps = self._settings.caps
        return (
            self._limited
            or bool(
                caps.per_endpoint and self._to_endpoint[delivery.endpoint_id] >= caps.per_endpoint
            )
            or bool(caps.per_organization and self._in_flight >= caps.per_organization)
        )

    async def _post(self, session: aiohttp.ClientSession, delivery: Delivery) -> AttemptResult:
        try:
            await self._egress.check(delivery.url)
            timestamp = int(self._clock().timestamp())
            headers = sign(
                delivery.secret,
                delivery.msg_id,
                timestamp,
                delivery.payload,
                previous_secrets=delivery.previous_secrets,
            )
        except UnsafeUrl as error:
            return AttemptResult(error=f"URL refused: {error.reason}")
        except (InvalidSecret, ValueError) as error:
            return AttemptResult(error=f"cannot sign: {error}", permanent=True)
        headers["Content-Type"] = "application/json"
        if self.trace_headers is not None:
            headers.update(self._trace_context(self.trace_headers, delivery.payload))
        try:
            async with session.post(
                delivery.url, data=delivery.payload, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                retry_after_header = response.headers.get("Retry-After")
        except UnsafeUrl as error:  # raised by the guarded resolver at connect time
            return AttemptResult(error=f"URL refused: {error.reason}")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            return AttemptResult(error=f"request failed: {type(error).__name__}")
        if 200 <= status < 300:
            return AttemptResult(error=None, status=status)
        if status == 410:
            return AttemptResult(error="HTTP 410: endpoint gone", status=status, endpoint_gone=True)
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(retry_after_header, self._clock())
        note = " (redirects are not followed)" if 300 <= status < 400 else ""
        return AttemptResult(error=f"HTTP {status}{note}", status=status, retry_after=retry_after)

    @staticmethod
    def _trace_context(trace_headers: TraceHeaders, payload: bytes) -> Mapping[str, str]:
        """The ``traceparent`` of the call ``payload`` is about (nothing: about no call)."""
        try:
            call_id = msgspec.json.decode(payload, type=_AboutCall).call_id
        except msgspec.DecodeError:  # its validation errors too
            return {}
        return {} if not call_id else trace_headers(call_id)

    async def _record(self, delivery: Delivery, result: AttemptResult) -> None:
        where = redact(delivery.url)
        if result.error is None:
            await self._outbox.mark_delivered(delivery.id)
            logger.info("webhook %s delivered to %s", delivery.msg_id, where)
            return
        if result.endpoint_gone:
            await self._outbox.disable_endpoint(delivery.endpoint_id)
            await self._outbox.mark_failed(delivery.id, None, result.error)
            logger.warning("webhook endpoint %s disabled (410 Gone)", delivery.endpoint_id)
            return
        next_at = None
        if not result.permanent:
            next_at = self._settings.retry.next_attempt(
                attempts=delivery.attempts + 1,
                enqueued_at=delivery.enqueued_at,
                now=self._clock(),
                rng=self._rng,
                retry_after=result.retry_after,
            )
        await self._outbox.mark_failed(delivery.id, next_at, result.error)
        if next_at is None:
            logger.warning("webhook %s to %s given up: %s", delivery.msg_id, where, result.error)
        else:
            logger.info(
                "webhook %s to %s failed (%s); retry at %s",
                delivery.msg_id,
                where,
                result.error,
                next_at.isoformat(),
            )
