"""The ``assistant-request`` webhook on real inbound calls: the lab carrier calls one of our
numbers (``LabAsterisk.originate_inbound``), voicedock asks the organization's server
(``fakes.tool_server``, which checks the signature) which assistant answers, and the caller
hears that assistant; with the server down, the number's own assistant answers.

The number's assistant (Support) opts in through the API: ``PATCH /assistants/{id}`` with
``assistant_request``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import wait_recorded
from e2e.test_calls_e2e import TERMINAL, until, wait_status
from fakes.tool_server import Answer, ToolServer
from fakes.world import ACME, ACME_NUMBERS, SUPPORT_ID
from voicedock.config import WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

SECRET = generate_secret()
CALLER = "+31612345678"
NIGHT_DESK = "Night desk, how can I help?"
CLOSED = "We are closed today. Goodbye."


@pytest.fixture
async def server() -> AsyncIterator[ToolServer]:
    night = {"assistant": {"name": "Night desk", "first_message": NIGHT_DESK}}
    async with ToolServer(SECRET, {"assistant-request": Answer(night)}) as running:
        yield running


async def serving(lab: LabAsterisk, directory: Path, url: str) -> LiveService:
    settings = service_settings(lab, directory / "inbound.db", "ari")
    settings.egress.allow_loopback = True
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(
            name="router",
            organization=ACME,
            url=url,
            secret=SECRET,
            event_types=["assistant-request"],
        )
    ]
    live = await serve(settings)
    resp = await live.client.patch(
        f"/assistants/{SUPPORT_ID}",
        json={"assistant_request": {"timeout_seconds": 2}},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    return live


async def call_in(lab: LabAsterisk, live: LiveService) -> tuple[str, dict[str, Any]]:
    """The lab caller calls our first number; (its channel, our call once answered)."""
    channel = await asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0], caller=CALLER)
    found: list[dict[str, Any]] = []

    async def answered() -> bool:
        resp = await live.client.get("/calls", headers=live.auth())
        calls = [c for c in (await resp.json())["calls"] if c["caller_phone"] == CALLER]
        found[:] = [c for c in calls if c["status"] == "in-progress"]
        return bool(found)

    await until(answered, 20)
    return channel, found[0]


async def first_words(live: LiveService, call_id: str) -> str:
    """What the caller heard of the assistant's first message, once it is recorded."""
    said: list[str] = []

    async def greeted() -> bool:
        resp = await live.client.get(f"/calls/{call_id}", headers=live.auth())
        messages = (await resp.json())["messages"]
        said[:] = [m["content"] for m in messages if m["role"] == "assistant"]
        return bool(said)

    await until(greeted, 20)
    return said[0]


async def test_the_servers_assistant_answers_the_inbound_call(
    lab: LabAsterisk, tmp_path: Path, server: ToolServer
) -> None:
    live = await serving(lab, tmp_path, server.url)
    try:
        channel, call = await call_in(lab, live)
        request = await server.wait_request()
        assert server.refused == 0
        assert request["type"] == "assistant-request"
        assert request["call_id"] == call["id"]
        assert request["data"]["caller"] == CALLER
        assert request["data"]["called"] == ACME_NUMBERS[0]
        assert call["agent_name"] == "Night desk"
        # Its greeting (the lab caller talks at once: it may cut it, never replace it).
        assert NIGHT_DESK.startswith(await first_words(live, call["id"]))
        await live.pbx.ari.hangup_channel(channel)
        await wait_status(live, call["id"], TERMINAL, within=15)
    finally:
        await live.client.close()


async def test_a_refusal_is_spoken_then_the_call_ends(
    lab: LabAsterisk, tmp_path: Path, server: ToolServer
) -> None:
    server.answers["assistant-request"] = Answer({"error": CLOSED})
    live = await serving(lab, tmp_path, server.url)
    try:
        _, call = await call_in(lab, live)
        ended = await wait_recorded(live, call["id"], within=30)
        assert (ended["status"], ended["end_reason"]) == ("ended", "refused")
        said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
        assert said == [CLOSED]
    finally:
        await live.client.close()


async def test_the_numbers_assistant_answers_when_the_server_is_down(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    async with ToolServer(SECRET, {}) as gone:
        url = gone.url  # a port nobody listens on once the server stopped
    live = await serving(lab, tmp_path, url)
    try:
        channel, call = await call_in(lab, live)
        assert call["agent_name"] == "Support"
        await live.pbx.ari.hangup_channel(channel)
        await wait_status(live, call["id"], TERMINAL, within=15)
    finally:
        await live.client.close()
