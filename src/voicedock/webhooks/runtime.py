"""``Webhooks``: what a running service needs for webhooks, built from ``Settings``.

    webhooks = Webhooks(store, settings)
    engine.observers.add(webhooks.publisher)
    await webhooks.start()          # the delivery worker runs its own task and session
    ...
    await webhooks.aclose()         # idempotent; before the store is closed

The URL policy comes from ``[webhooks]`` plus the PBX's own control addresses (ARI, AMI, ESL),
which are never called whatever the configuration allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from yarl import URL

from voicedock.errors import ConfigError, UnsafeUrl
from voicedock.webhooks.campaign_events import CampaignWebhooks
from voicedock.webhooks.publisher import WebhookPublisher
from voicedock.webhooks.server_requests import ServerRequests
from voicedock.webhooks.ssrf import (
    BlockedTarget,
    CheckedUrl,
    HostResolver,
    UrlPolicy,
    check_url,
    system_resolver,
)
from voicedock.webhooks.worker import DeliveryWorker, WorkerSettings

if TYPE_CHECKING:
    from voicedock.config import Settings
    from voicedock.store.base import Store

log = logging.getLogger("voicedock.webhooks")

CHECK_TIMEOUT_SECONDS = 5.0  # DNS for a URL checked while an API request waits
# A nudge right away and one shortly after: the first may reach the worker before the
# transaction that enqueued has committed.
SECOND_NUDGE_SECONDS = 0.1


def url_policy(settings: Settings) -> UrlPolicy:
    w = settings.webhooks
    blocked = [BlockedTarget.parse(cidr) for cidr in w.blocked_networks]
    blocked += pbx_targets(settings)
    return UrlPolicy(
        allow_loopback=w.allow_loopback,
        allow_private=w.allow_private,
        blocked=tuple(blocked),
        allowed=tuple(ipaddress.ip_network(cidr, strict=False) for cidr in w.allowed_networks),
    )


def pbx_targets(settings: Settings) -> list[BlockedTarget]:
    """The PBX's control ports (and voicedock's own API): a webhook must never become a
    request to ARI/AMI/ESL, or loop back into this service."""
    a, f = settings.pbx.asterisk, settings.pbx.freeswitch
    places: list[tuple[str, int]] = [
        (a.ami_host, a.ami_port),
        (f.esl_host, f.esl_port),
        (settings.server.host, settings.server.port),
    ]
    try:
        ari = URL(a.ari_url)
        if ari.host is not None and ari.port is not None:
            places.append((ari.host, ari.port))
    except ValueError:
        pass
    targets = []
    for host, port in places:
        for address in _literal_addresses(host):
            targets.append(BlockedTarget.parse(address, port))
    return targets


def _literal_addresses(host: str) -> list[str]:
    # A server bound to every address is at least reachable on loopback (its other addresses
    # are private ones, refused unless allowed; blocking the port everywhere would refuse
    # customers' public servers on the same port).
    if host.lower() == "localhost" or host in ("0.0.0.0", "::"):
        return ["127.0.0.0/8", "::1"]
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return []  # a DNS name: its addresses are not known without a lookup


def worker_settings(settings: Settings) -> WorkerSettings:
    w = settings.webhooks
    return WorkerSettings(
        concurrency=w.concurrency,
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
    ) -> None:
        self.policy = url_policy(settings)
        self.resolver = resolver
        self.worker = DeliveryWorker(
            store.outbox(),
            policy=self.policy,
            resolver=resolver,
            settings=worker or worker_settings(settings),
        )
        self.publisher = WebhookPublisher(on_enqueued=self.nudge)
        self.campaign_events = CampaignWebhooks(on_enqueued=self.nudge)
        # tool-calls and assistant-request: the requests a call waits for.
        self.requests = ServerRequests(store, self.policy, resolver)
        self._configured = [e.url for e in settings.webhooks.endpoints]
        self._closed = False

    async def check_url(self, url: str) -> CheckedUrl:
        """The SSRF check an API request runs on a new endpoint (``UnsafeUrl`` if refused)."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
                return await check_url(url, self.policy, self.resolver)
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
