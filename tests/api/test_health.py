"""``GET /health`` through REST on the real service: 200 only when calls can be placed, 503 with
the component that is down otherwise; several PBX servers each shown; the speech providers'
breakers, each endpoint named only to the operator's monitoring token."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from api.conftest import Api
from e2e.conftest import start_app
from fakes.pbx import FakePbx
from fakes.world import make_settings
from pbx.freeswitch.live_service import running_freeswitch_service, until
from voicedock.api.app import create_app
from voicedock.config import AsteriskSettings, PbxSettings, Settings
from voicedock.pbx.base import Pbx
from voicedock.pbx.several import SeveralPbxs
from voicedock.pipeline.pools.provider_health import Endpoint
from voicedock.service import Service

pytestmark = pytest.mark.unit


@contextlib.asynccontextmanager
async def served(settings: Settings, pbx: Pbx | None = None) -> AsyncIterator[TestClient[Any, Any]]:
    """The API of a service opened on ``settings`` (with ``pbx``, else the configured one)."""

    async def factory() -> Service:
        return await Service.open(settings, pbx)

    client: TestClient[Any, Any] = TestClient(
        TestServer(create_app(settings, factory), host="127.0.0.1", port=0)
    )
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_healthy_service_is_200_with_each_component(api: Api) -> None:
    resp = await api.client.get("/health")
    assert resp.status == 200
    assert await resp.json() == {
        "status": "ok",
        "can_place_calls": True,
        "draining": False,
        "database": {"status": "up"},
        "pbx": {"kind": "fake", "status": "up", "links": {"pbx": "up"}},
        "providers": [],
    }


TOKEN = "a-metrics-token-0123456789"


async def test_an_open_provider_breaker_is_shown_its_endpoint_only_to_the_operator(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'breakers.db'}")
    settings.metrics.bearer_token = TOKEN
    client, service = await start_app(settings, FakePbx())
    health = service.speech.provider_health
    failing = Endpoint("llm", "openai-compatible", "http://10.1.2.3:8000/v1", "acme-model")
    fine = Endpoint("tts", "openai", "", "tts-1")
    try:
        for _ in range(3):  # three failures in a row open it
            attempt = health.attempt(failing)
            assert attempt is not None
            attempt.failed()
        served = health.attempt(fine)
        assert served is not None
        served.succeeded()
        public = await client.get("/health")
        public_text = await public.text()
        operator = await client.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        operator_body = await operator.json()
    finally:
        await client.close()
    assert public.status == 200  # calls go on with their plans' next entries
    assert (await public.json())["providers"] == [
        {"engine": "llm", "provider": "openai-compatible", "state": "open"}
    ]
    for private in ("10.1.2.3", "8000", "acme-model", "/v1"):
        assert private not in public_text  # public: no host, port or model
    assert operator.status == 200
    assert operator_body["status"] == "ok"
    assert operator_body["providers"] == [
        {
            "engine": "llm",
            "provider": "openai-compatible",
            "state": "open",
            "endpoint": "openai-compatible/10.1.2.3:8000/acme-model",
        },
        {"engine": "tts", "provider": "openai", "state": "closed", "endpoint": "openai/tts-1"},
    ]


async def test_pbx_link_down_is_503_degraded(api: Api) -> None:
    api.pbx.connected = False
    resp = await api.client.get("/health")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "degraded"
    assert body["can_place_calls"] is False
    assert body["database"] == {"status": "up"}
    assert body["pbx"] == {"kind": "fake", "status": "down", "links": {"pbx": "down"}}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


async def test_unreachable_asterisk_is_503_naming_ari_and_ami(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'health.db'}")
    port = _closed_port()
    settings.pbx = PbxSettings(
        kind="asterisk",
        asterisk=AsteriskSettings(
            ari_url=f"http://127.0.0.1:{port}/ari",
            ari_user="health-user",
            ari_password="health-secret-password",
            ami_host="127.0.0.1",
            ami_port=port,
            ami_user="health-ami",
            ami_secret="health-ami-secret",
            originate_via="ami",
        ),
    )

    async with served(settings) as client:
        resp = await client.get("/health")
        text = await resp.text()
        body = await resp.json()
    assert resp.status == 503, text
    assert body["status"] == "degraded"
    assert body["pbx"] == {
        "kind": "asterisk",
        "status": "down",
        "links": {"ami": "down", "ari": "down"},
    }
    for secret in ("health-secret-password", "health-ami-secret", "health-user", str(port)):
        assert secret not in text  # public: no credentials, no address


async def test_freeswitch_stopped_is_503_naming_esl(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path) as live:
        resp = await live.client.get("/health")
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["pbx"] == {
            "kind": "freeswitch",
            "status": "up",
            "links": {"esl": "up"},
        }
        await live.far_end.fake.aclose()  # FreeSWITCH goes away

        async def down() -> bool:
            return (await live.client.get("/health")).status == 503

        await until(down, within=5)
        body = await (await live.client.get("/health")).json()
        assert body["status"] == "degraded"
        assert body["pbx"] == {"kind": "freeswitch", "status": "down", "links": {"esl": "down"}}


async def test_no_pbx_is_200_with_pbx_disabled(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'none.db'}")
    settings.pbx = PbxSettings(kind="none")

    async with served(settings) as client:
        resp = await client.get("/health")
        body = await resp.json()
    assert resp.status == 200
    assert body["can_place_calls"] is False
    assert body["pbx"] == {"kind": "none", "status": "disabled", "links": {}}


async def test_several_servers_each_shown_one_down_is_200_degraded_still_placing_calls(
    tmp_path: Path,
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'several.db'}")
    up, down = FakePbx(), FakePbx()
    down.connected = False

    async with served(settings, SeveralPbxs({"ams": up, "fra": down})) as client:
        resp = await client.get("/health")
        body = await resp.json()
        down.connected = True
        healthy = await client.get("/health")
    assert resp.status == 200  # a load balancer keeps a node that places calls
    assert body["status"] == "degraded"
    assert body["can_place_calls"] is True  # on ams
    assert body["pbx"] == {
        "kind": "fake",
        "status": "up",
        "links": {"ams.pbx": "up", "fra.pbx": "down"},
        "servers": {
            "ams": {"status": "up", "links": {"pbx": "up"}},
            "fra": {"status": "down", "links": {"pbx": "down"}},
        },
    }
    assert healthy.status == 200


async def test_configured_servers_are_each_connected_and_shown(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'servers.db'}")
    ports = [_closed_port(), _closed_port()]
    settings.pbx = PbxSettings(
        kind="asterisk",
        asterisk=AsteriskSettings(
            ari_password="servers-secret-password",
            servers=[
                AsteriskSettings(
                    name=name,
                    ari_url=f"http://127.0.0.1:{port}/ari",
                    ari_password="servers-secret-password",
                )
                for name, port in zip(("ams", "fra"), ports, strict=True)
            ],
        ),
    )

    async with served(settings) as client:
        resp = await client.get("/health")
        text = await resp.text()
        body = await resp.json()
    assert resp.status == 503, text
    assert body["can_place_calls"] is False
    assert body["pbx"]["kind"] == "asterisk"
    assert body["pbx"]["servers"] == {
        name: {"status": "down", "links": {"ari": "down"}} for name in ("ams", "fra")
    }
    for secret in ("servers-secret-password", *map(str, ports)):
        assert secret not in text
