"""Webhooks end to end inside one service: engine → outbox (same transaction) → worker → a
local receiver that verifies every signature. SQLite file and real PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import unused_port

from fakes.calls import place_outbound
from fakes.pbx import FakePbx
from fakes.requests import outbound_request
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings, org_id
from pg_server import fresh_database
from voicedock.config import Settings, WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock.errors import ConfigError
from voicedock.service import Service
from voicedock.webhooks import runtime
from voicedock.webhooks.retry import RetryPolicy
from voicedock.webhooks.worker import WorkerSettings

from .receiver import Receiver, wait_until

pytestmark = pytest.mark.unit

FAST = WorkerSettings(
    concurrency=4,
    request_timeout=2.0,
    connect_timeout=1.0,
    poll_interval=0.05,
    retry=RetryPolicy(
        first_delay=timedelta(milliseconds=50), factor=2.0, max_delay=timedelta(milliseconds=200)
    ),
)


@pytest.fixture(autouse=True)
def fast_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "worker_settings", lambda settings: FAST)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return await fresh_database(request.getfixturevalue("postgres_server"), migrated=True)
    return f"sqlite:///{tmp_path / 'hooks.db'}"


@pytest.fixture
def secret() -> str:
    return generate_secret()


def settings_for(database_url: str, url: str, secret: str, *, loopback: bool = True) -> Settings:
    settings = make_settings(database_url)
    settings.egress.allow_loopback = loopback
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(name="crm", organization=ACME, url=url, secret=secret)
    ]
    return settings


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[Receiver]:
    receiver = Receiver(secret)
    await receiver.start()
    yield receiver
    await receiver.stop()


async def run_call(service: Service, pbx: FakePbx) -> str:
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    call_id = str((await place_outbound(service.engine, org_id(ACME), request)).body["call_id"])
    await pbx.answer(call_id)
    await pbx.hang_up_remote(call_id)
    return call_id


def kinds(receiver: Receiver) -> list[tuple[str, str | None]]:
    bodies = [json.loads(r.body) for r in receiver.requests]
    return sorted((b["type"], b["data"].get("status")) for b in bodies)


EXPECTED = sorted(
    [
        ("status-update", "connecting"),
        ("status-update", "in-progress"),
        ("status-update", "ended"),
        ("end-of-call-report", "ended"),
    ]
)


async def test_call_lifecycle_is_delivered_signed(
    database_url: str, receiver: Receiver, secret: str
) -> None:
    pbx = FakePbx()
    async with await Service.open(
        settings_for(database_url, receiver.url, secret), pbx=pbx
    ) as service:
        call_id = await run_call(service, pbx)
        await wait_until(lambda: len(receiver.accepted) == 4)
    assert receiver.rejected == 0
    assert kinds(receiver) == EXPECTED
    assert all(json.loads(r.body)["call_id"] == call_id for r in receiver.requests)
    assert set(receiver.accepted.values()) == {1}


async def test_receiver_down_then_up_gets_every_event_once(database_url: str, secret: str) -> None:
    port = unused_port()
    receiver = Receiver(secret)
    url = f"http://127.0.0.1:{port}/hook"
    pbx = FakePbx()
    async with await Service.open(settings_for(database_url, url, secret), pbx=pbx) as service:
        await run_call(service, pbx)
        await run_call(service, pbx)
        await receiver.start(port)
        try:
            await wait_until(lambda: len(receiver.accepted) == 8, timeout=10)
        finally:
            await receiver.stop()
    assert set(receiver.accepted.values()) == {1}  # once per webhook-id
    assert receiver.rejected == 0


def attempts(db: Path) -> list[tuple[int, str | None]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute("SELECT attempts, delivered_at FROM webhook_outbox"))


async def test_service_restarted_mid_retry_still_delivers(tmp_path: Path, secret: str) -> None:
    db = tmp_path / "restart.db"
    port = unused_port()
    url = f"http://127.0.0.1:{port}/hook"
    settings = settings_for(f"sqlite:///{db}", url, secret)
    pbx = FakePbx()
    async with await Service.open(settings, pbx=pbx) as service:
        await run_call(service, pbx)
        await wait_until(lambda: len(attempts(db)) == 4 and all(a >= 1 for a, _ in attempts(db)))
    assert all(delivered is None for _, delivered in attempts(db))
    receiver = Receiver(secret)
    await receiver.start(port)
    try:
        async with await Service.open(settings, pbx=FakePbx()):
            await wait_until(lambda: len(receiver.accepted) == 4, timeout=10)
    finally:
        await receiver.stop()
    assert kinds(receiver) == EXPECTED
    assert set(receiver.accepted.values()) == {1}


async def test_configured_loopback_url_is_refused_at_start_up(tmp_path: Path, secret: str) -> None:
    settings = settings_for(
        f"sqlite:///{tmp_path / 'x.db'}", "http://127.0.0.1:9/hook", secret, loopback=False
    )
    with pytest.raises(ConfigError) as raised:
        await Service.open(settings, pbx=FakePbx())
    assert raised.value.key == "webhooks.endpoints[0].url"


async def test_pbx_control_port_is_never_a_webhook_target(tmp_path: Path, secret: str) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'x.db'}", "http://127.0.0.1:5038/", secret)
    with pytest.raises(ConfigError, match="PBX"):
        await Service.open(settings, pbx=FakePbx())
