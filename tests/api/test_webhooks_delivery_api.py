"""An endpoint created through the API receives its organization's call events, signed with
the secret the creation returned (app on 127.0.0.1 port 0, receiver on 127.0.0.1 port 0)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fakes.pbx import FakePbx
from fakes.world import ACME, DESTINATION, GLOBEX, SUPPORT_ID, make_settings
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.service import Service
from webhooks.receiver import Receiver, wait_until

pytestmark = pytest.mark.unit


@pytest.fixture
async def lab_api(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], FakePbx, str, str]]:
    settings = make_settings(f"sqlite:///{tmp_path / 'api.db'}")
    settings.egress.allow_loopback = True  # as in the lab
    settings.webhooks.poll_interval_ms = 50
    pbx = FakePbx()
    services: list[Service] = []

    async def factory() -> Service:
        services.append(await Service.open(settings, pbx=pbx))
        return services[0]

    client: TestClient[Any, Any] = TestClient(
        TestServer(create_app(settings, factory), host="127.0.0.1", port=0)
    )
    await client.start_server()
    try:
        acme, _ = await issue_api_key(services[0].store, ACME)
        globex, _ = await issue_api_key(services[0].store, GLOBEX)
        yield client, pbx, acme, globex
    finally:
        await client.close()


async def test_api_created_endpoint_receives_signed_events(
    lab_api: tuple[TestClient[Any, Any], FakePbx, str, str],
) -> None:
    client, pbx, acme, globex = lab_api
    receiver = Receiver(secret="")
    await receiver.start()
    try:
        created = await client.post(
            "/webhooks",
            json={"url": receiver.url, "event_types": ["status-update", "end-of-call-report"]},
            headers={"Authorization": f"Bearer {acme}"},
        )
        assert created.status == 201, await created.text()
        receiver.secret = (await created.json())["secret"]  # verifies with the one shown
        other = await client.post(
            "/webhooks",
            json={"url": receiver.url.replace("/hook", "/elsewhere")},
            headers={"Authorization": f"Bearer {globex}"},
        )
        assert other.status == 201
        placed = await client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
            headers={"Authorization": f"Bearer {acme}"},
        )
        call_id = (await placed.json())["call_id"]
        await pbx.answer(call_id)
        await pbx.hang_up_remote(call_id)
        await wait_until(lambda: len(receiver.accepted) == 4)
    finally:
        await receiver.stop()
    types = sorted(json.loads(r.body)["type"] for r in receiver.requests)
    assert types == ["end-of-call-report", "status-update", "status-update", "status-update"]
    assert receiver.rejected == 0
    assert receiver.redirect_target_hits == 0  # the other organization's endpoint got nothing
