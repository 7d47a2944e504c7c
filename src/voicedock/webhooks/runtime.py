"""``Webhooks``: what a running service needs for webhooks, built from ``Settings``.

    webhooks = Webhooks(store, settings)
    engine = CallEngine(..., EngineOptions(observers=Observers(webhooks.publisher, ...)))
    await webhooks.start()          # the delivery worker runs its own task and session
    ...
    await webhooks.aclose()         # idempotent; before the store is closed

The URL policy is the egress guard's (``[egress]`` plus the PBX's own control addresses: ARI,
AMI, ESL, never called whatever the configuration allows), shared with the speech providers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from voicedock.domain.webhooks import DeliveryCaps
from voicedock.egress import CheckedUrl, HostResolver, system_resolver
from voicedock.egress.settings import egress_guard
from voicedock.errors import ConfigError, UnsafeUrl
from voicedock.webhooks.campaign_events import CampaignWebhooks
from voicedock.webhooks.number_events import NumberHealthWebhooks
from voicedock.webhooks.publisher import WebhookPublisher
from voicedock.webhooks.server_requests import ServerRequests
from voicedock.webhooks.spend_events import SpendWebhooks
from voicedock.webhooks.test_run_events import RunWebhooks
from voicedock.webhooks.worker import DeliveryWorker, WorkerSettings

if TYPE_CHECKING:
    from voicedock.config import Settings
    from voicedock.store.base import Store

log = logging.getLogger("voicedock.webhooks")

CHECK_TIMEOUT_SECONDS = 5.0  # DNS for a URL checked while an API request waits
# A nudge right away and one shortly after: the first may reach the worker before the
# transaction that enqueued has committed.
SECOND_NUDGE_SECONDS = 0.1


def worker_settings(settings: Settings) -> WorkerSettings:
    w = settings.webhooks
    return WorkerSettings(
        concurrency=w.concurrency,
        caps=DeliveryCaps(
            per_endpoint=w.concurrency_per_endpoint,
            per_organization=w.concurrency_per_organization,
        ),
        request_timeout=float(w.request_timeout_seconds),
        connect_timeout=float(w.connect_timeout_seconds),
        lease=timedelta(seconds=max(60, 2 * w.request_timeout_seconds)),
        poll_interval=w.poll_interval_ms / 1000,
    )


class Webhooks:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        resolver: HostResolver = system_resolver,
        worker: WorkerSettings | None = None,
        node_id: str = "",
    ) -> None:
        """``node_id``: the node whose worker this is (its claims die with its node lease)."""
        self.egress = egress_guard(settings, resolver)
        self.policy = self.egress.policy
        self.resolver = resolver
        self.worker = DeliveryWorker(
            store.outbox(node_id), egress=self.egress, settings=worker or worker_settings(settings)
        )
        self.publisher = WebhookPublisher(on_enqueued=self.nudge)
        self.campaign_events = CampaignWebhooks(on_enqueued=self.nudge)
        self.test_run_events = RunWebhooks(on_enqueued=self.nudge)
        self.spend_alerts = SpendWebhooks(on_enqueued=self.nudge)
        self.number_alerts = NumberHealthWebhooks(on_enqueued=self.nudge)
        # tool-calls and assistant-request: the requests a call waits for.
        self.requests = ServerRequests(store, self.egress)
        self._configured = [e.url for e in settings.webhooks.endpoints]
        self._closed = False

    async def check_url(self, url: str) -> CheckedUrl:
        """The SSRF check an API request runs on a new endpoint (``UnsafeUrl`` if refused)."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                return await self.egress.check(url)
        except TimeoutError:
            raise UnsafeUrl(url, "host did not resolve in time") from None

    def nudge(self) -> None:
        self.worker.notify()
        with contextlib.suppress(RuntimeError):  # no running loop: nothing to wake
            asyncio.get_running_loop().call_later(SECOND_NUDGE_SECONDS, self.worker.notify)

    async def start(self) -> None:
        """Refuse configured URLs the policy forbids, then start the delivery worker (it owns
        its task and HTTP session)."""
        if self._closed:
            raise RuntimeError("Webhooks was closed")
        await self.check_configured()
        await self.worker.__aenter__()

    async def check_configured(self) -> None:
        """A configured endpoint whose URL is refused stops start-up (``ConfigError``); one
        whose host does not resolve now only warns: DNS may be back before the first event,
        and every delivery is checked again."""
        for i, url in enumerate(self._configured):
            try:
                await self.check_url(url)
            except UnsafeUrl as exc:
                if "resolve" not in exc.reason:
                    raise ConfigError(f"webhooks.endpoints[{i}].url", exc.reason) from None
                log.warning("webhooks.endpoints[%d]: %s", i, exc.reason)

    async def aclose(self) -> None:
        """Stop delivering; pending rows stay in the outbox for the next start. Idempotent."""
        self._closed = True
        await self.worker.aclose()
        await self.requests.aclose()
