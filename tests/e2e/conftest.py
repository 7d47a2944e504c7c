"""The real service (REST → engine → AsteriskPbx) against the lab Asterisk, served on 127.0.0.1.

Reuses the session ``lab`` fixture of the Asterisk tests (one lab instance per session).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiohttp.test_utils import TestClient, TestServer

import lab_session
from fakes.world import ACME, make_settings
from pbx.lab_calls import lab_settings
from voicedock.api.access_log import AccessLog
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.backoff import Backoff
from voicedock.calls.transfers.agent import AgentDialogue
from voicedock.config import PbxSettings, Settings, TrunkSettings
from voicedock.domain.records import utcnow
from voicedock.pbx.asterisk.ami.client import AmiClient
from voicedock.pbx.asterisk.ari.client import AriClient
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import Pbx
from voicedock.service import Service
from voicedock_lab.server import LabAsterisk
from voicedock_lab.settings import LabSettings


@pytest.fixture(scope="session")
def lab() -> Iterator[LabAsterisk]:
    """An own lab instance (own ports and dir): the restart test must not disturb others."""
    settings = LabSettings(instance=f"pytest-e2e-{os.getpid()}")
    yield from lab_session._running_lab("lab Asterisk", lab_session._blocker(), settings)


@dataclass
class LiveService:
    """The running service as a user sees it: its app's client, the ``Service``, and an API key
    of organization ACME (``freeswitch.live_service.UserPathService`` is the same on FreeSWITCH)."""

    client: TestClient[Any, Any]
    service: Service
    key: str

    @property
    def pbx(self) -> AsteriskPbx:
        assert isinstance(self.service.pbx, AsteriskPbx)
        return self.service.pbx

    # How long ``wait_status`` waits by default (a harness may allow its PBX longer).
    status_wait_s: ClassVar[float] = 5.0

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def post(self, path: str, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        resp = await self.client.post(path, json=dict(body), headers=self.auth())
        return resp.status, await resp.json()

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        resp = await self.client.get(path, headers=self.auth())
        return resp.status, await resp.json()

    async def call(self, call_id: str) -> dict[str, Any]:
        status, body = await self.get(f"/calls/{call_id}")
        assert status == 200, body
        return body

    async def wait_status(
        self, call_id: str, wanted: tuple[str, ...], within: float | None = None
    ) -> dict[str, Any]:
        """``GET /calls/{id}`` until its status is one of ``wanted``; returns the call."""
        seen: dict[str, Any] = {}
        try:
            async with asyncio.timeout(self.status_wait_s if within is None else within):
                while (seen := await self.call(call_id))["status"] not in wanted:
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"{call_id} stayed {seen.get('status')!r}, not {wanted}") from None
        return seen


def service_settings(
    lab: LabAsterisk, database: Path, originate_via: str, media_transport: str = "auto"
) -> Settings:
    settings = make_settings(f"sqlite:///{database}")
    asterisk = lab_settings(lab, originate_via, media_transport)
    settings.pbx = PbxSettings(kind="asterisk", asterisk=asterisk)
    settings.trunks = [TrunkSettings(name="carrier", endpoint="carrier")]
    return settings


def fast_reconnecting_pbx(settings: Settings) -> AsteriskPbx:
    """The adapter ``make_pbx`` builds, with short reconnect delays for the restart test."""
    asterisk = settings.pbx.asterisk
    backoff = Backoff(initial=0.05, cap=0.5)
    ari = AriClient(asterisk, heartbeat=2.0, backoff=backoff)
    ami = AmiClient(asterisk, ping_interval=1.0, ping_timeout=1.0, backoff=Backoff(0.05, 0.5))
    return AsteriskPbx(asterisk, ari=ari, ami=ami, warm_dialogue=AgentDialogue())


async def start_app(
    settings: Settings, pbx: Pbx | None = None, clock: Callable[[], datetime] = utcnow
) -> tuple[TestClient[Any, Any], Service]:
    """What ``voicedock serve`` runs: ``create_app`` on 127.0.0.1 port 0, opening the ``Service``
    (with ``pbx``, or the one ``settings`` name; ``clock``: the engine's) as the app starts.
    The caller closes the client, which closes the service."""
    services: list[Service] = []

    async def factory() -> Service:
        service = await Service.open(settings, pbx=pbx, clock=clock)
        services.append(service)
        return service

    server = TestServer(create_app(settings, factory), host="127.0.0.1", port=0)
    await server.start_server(access_log_class=AccessLog)  # as ``voicedock serve`` logs
    client: TestClient[Any, Any] = TestClient(server)
    await client.start_server()
    return client, services[0]


async def serve(settings: Settings, pbx: AsteriskPbx | None = None) -> LiveService:
    """The service on the lab Asterisk, once ARI (and AMI) are connected, with an API key."""
    client, service = await start_app(settings, pbx)
    try:
        assert isinstance(service.pbx, AsteriskPbx)
        await service.pbx.ari.wait_registered(10)
        if service.pbx.ami is not None:
            await service.pbx.ami.wait_connected(10)
        key, _ = await issue_api_key(service.store, ACME)
    except BaseException:
        await client.close()
        raise
    return LiveService(client, service, key)


@pytest.fixture(params=["ari", "ami"])
async def live(
    request: pytest.FixtureRequest, lab: LabAsterisk, tmp_path: Path
) -> AsyncIterator[LiveService]:
    running = await serve(service_settings(lab, tmp_path / "e2e.db", request.param))
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def live_ari(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    running = await serve(service_settings(lab, tmp_path / "e2e.db", "ari"))
    try:
        yield running
    finally:
        await running.client.close()
