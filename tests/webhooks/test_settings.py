"""``[webhooks]`` settings: validation at load, mirroring configured endpoints, the URL policy,
and a refusal at send time (a stored URL the policy no longer allows is never called)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fakes.memory_outbox import DeliveryState
from fakes.memory_store import MemoryStore
from fakes.world import ACME, GLOBEX, SUPPORT_ID, make_settings, org_id
from voicedock.config import WebhookEndpointSettings, load_settings
from voicedock.domain.webhooks import WebhookEndpoint, generate_secret
from voicedock.egress.guard import address_refusal
from voicedock.egress.settings import egress_policy
from voicedock.errors import ConfigError
from voicedock.organizations.config_mirror import mirror_config, stable_id
from voicedock.webhooks import events
from voicedock.webhooks.outbox import enqueue_event
from voicedock.webhooks.runtime import Webhooks

from .receiver import Receiver, wait_until
from .test_service_delivery import FAST

pytestmark = pytest.mark.unit

SECRET = generate_secret()


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "voicedock.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_loads_a_webhooks_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[webhooks]
allow_loopback = true
allowed_networks = ["10.20.0.0/16"]
concurrency = 4

[[webhooks.endpoints]]
name = "crm"
organization = "acme"
url = "https://crm.example.com/hooks"
secret = "{SECRET}"
event_types = ["status-update", "transcript"]
""",
    )
    settings = load_settings(path, environ={"VOICEDOCK_WEBHOOKS__POLL_INTERVAL_MS": "250"})
    assert settings.egress.allow_loopback is True  # the key once in [webhooks]
    assert settings.egress.allowed_networks == ["10.20.0.0/16"]
    assert settings.webhooks.poll_interval_ms == 250
    (endpoint,) = settings.webhooks.endpoints
    assert endpoint.event_types == ["status-update", "transcript"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[webhooks]\nconcurrency = 0", "webhooks.concurrency"),
        ('[egress]\nallowed_networks = ["nope"]', "egress.allowed_networks[0]"),
        ('[egress]\nallowed_networks = ["127.0.0.1:99999"]', "egress.allowed_networks[0]"),
        (
            "[webhooks]\nallow_loopback = true\n[egress]\nallow_loopback = false",
            "webhooks.allow_loopback",
        ),
        ('[egress]\nprovider_hosts = ["https://api.openai.com"]', "egress.provider_hosts[0]"),
        (
            '[[webhooks.endpoints]]\nname = "a b"\norganization = "acme"\n'
            f'url = "https://x.example/"\nsecret = "{SECRET}"',
            "webhooks.endpoints[0].name",
        ),
        (
            '[[webhooks.endpoints]]\nname = "a"\norganization = "acme"\n'
            'url = "https://x.example/"\nsecret = "short"',
            "webhooks.endpoints[0].secret",
        ),
        (
            '[[webhooks.endpoints]]\nname = "a"\norganization = "acme"\n'
            f'url = "ftp://x.example/"\nsecret = "{SECRET}"',
            "webhooks.endpoints[0].url",
        ),
        (
            '[[webhooks.endpoints]]\nname = "a"\norganization = "acme"\n'
            f'url = "https://x.example/"\nsecret = "{SECRET}"\nevent_types = ["call-started"]',
            "webhooks.endpoints[0].event_types[0]",
        ),
        (
            '[[webhooks.endpoints]]\nname = "a"\norganization = "acme"\nassistant = "Ghost"\n'
            f'url = "https://x.example/"\nsecret = "{SECRET}"',
            "webhooks.endpoints[0].assistant",
        ),
    ],
)
def test_bad_settings_name_their_key(tmp_path: Path, body: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, body), environ={})
    assert raised.value.key == key


async def test_configured_endpoints_are_mirrored_idempotently() -> None:
    settings = make_settings()
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(
            name="crm", organization=ACME, url="https://crm.example.com/", secret=SECRET
        ),
        WebhookEndpointSettings(
            name="support",
            organization=ACME,
            url="https://support.example.com/",
            secret=SECRET,
            assistant="Support",
            event_types=["end-of-call-report"],
        ),
    ]
    store = MemoryStore()
    await mirror_config(store, settings)
    await mirror_config(store, settings)
    endpoints = await store.list_webhook_endpoints(org_id(ACME))
    assert sorted(e.url for e in endpoints) == [
        "https://crm.example.com/",
        "https://support.example.com/",
    ]
    support = next(e for e in endpoints if e.assistant_id is not None)
    assert support.assistant_id == SUPPORT_ID
    assert support.id == stable_id("webhook", org_id(ACME), "support")
    settings.webhooks.endpoints[0].url = "https://crm2.example.com/"
    await mirror_config(store, settings)
    urls = sorted(e.url for e in await store.list_webhook_endpoints(org_id(ACME)))
    assert urls == ["https://crm2.example.com/", "https://support.example.com/"]
    assert await store.list_webhook_endpoints(org_id(GLOBEX)) == []


def test_policy_blocks_the_pbx_and_honours_allowed_networks() -> None:
    settings = make_settings()
    settings.egress.allowed_networks = ["10.20.0.0/16"]
    policy = egress_policy(settings)
    ami = ipaddress.ip_address("127.0.0.1")
    assert address_refusal(ami, 5038, policy) is not None  # AMI, from pbx.asterisk
    assert address_refusal(ami, 8088, policy) is not None  # ARI
    assert address_refusal(ami, 8080, policy) is not None  # voicedock's own API
    assert address_refusal(ipaddress.ip_address("10.20.1.2"), 443, policy) is None
    assert address_refusal(ipaddress.ip_address("10.21.1.2"), 443, policy) == "private address"
    assert address_refusal(ipaddress.ip_address("169.254.169.254"), 80, policy) is not None


async def test_stored_url_refused_at_send_time_is_never_called() -> None:
    """An endpoint stored while loopback was allowed, delivered under a policy that refuses
    it (or a DNS answer that changed): the worker records the refusal, nothing is sent."""
    receiver = Receiver(SECRET)
    await receiver.start()
    store = MemoryStore()
    await mirror_config(store, make_settings())
    async with store.transaction() as tx:
        await tx.insert_webhook_endpoint(
            WebhookEndpoint("we_1", org_id(ACME), receiver.url, SECRET)
        )
        payload = events.status_update("call-1", "connecting", at=datetime.now(UTC))
        await enqueue_event(tx, ["we_1"], payload)
    webhooks = Webhooks(store, make_settings(), worker=FAST)
    try:
        await webhooks.start()
        webhooks.nudge()
        await wait_until(lambda: all(r.attempts >= 1 for r in store.deliveries.records.values()))
    finally:
        await webhooks.aclose()
        await webhooks.aclose()  # idempotent
        await receiver.stop()
    (record,) = store.deliveries.records.values()
    assert record.state is DeliveryState.PENDING
    assert record.last_error == "URL refused: loopback address"
    assert receiver.requests == []
