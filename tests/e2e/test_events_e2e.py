"""Live events of a real call on the lab Asterisk: the SSE stream of ``GET /calls/{id}/events``
shows connecting → in-progress → ended, and a webhook receiver on 127.0.0.1 gets the same
transitions plus one end-of-call report, every delivery signed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import serve, service_settings
from fakes.world import ACME, SUPPORT_ID
from pbx.lab_calls import ANSWERS
from voicedock.config import WebhookEndpointSettings
from voicedock.domain.webhooks import generate_secret
from voicedock_lab.server import LabAsterisk
from webhooks.receiver import Receiver, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]


def sse_messages(buffer: str) -> tuple[list[dict[str, Any]], str]:
    """Complete messages in ``buffer`` (data parsed) and the unfinished rest."""
    *blocks, rest = buffer.split("\n\n")
    messages = []
    for block in blocks:
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "data" in fields:
            messages.append({**fields, "data": json.loads(fields["data"])})
    return messages, rest


async def test_event_stream_and_webhooks_of_a_real_call(lab: LabAsterisk, tmp_path: Path) -> None:
    secret = generate_secret()
    receiver = Receiver(secret)
    await receiver.start()
    settings = service_settings(lab, tmp_path / "events.db", "ari")
    settings.egress.allow_loopback = True
    settings.webhooks.endpoints = [
        WebhookEndpointSettings(name="lab", organization=ACME, url=receiver.url, secret=secret)
    ]
    live = await serve(settings)
    try:
        resp = await live.client.post(
            "/calls/outbound",
            json={"destination": ANSWERS, "assistant_id": SUPPORT_ID},
            headers=live.auth(),
        )
        assert resp.status == 200, await resp.text()
        call_id = str((await resp.json())["call_id"])
        stream = await live.client.get(f"/calls/{call_id}/events", headers=live.auth())
        assert stream.status == 200
        statuses: list[str] = []
        buffer = ""
        async with asyncio.timeout(30):
            while True:
                chunk = await stream.content.readany()
                if not chunk:
                    break  # the server ends the stream after the terminal status
                messages, buffer = sse_messages(buffer + chunk.decode())
                for message in messages:
                    if message["event"] != "status":
                        continue
                    statuses.append(message["data"]["data"]["to"])
                    if statuses[-1] == "in-progress":
                        ended = await live.client.post(
                            f"/calls/{call_id}/control",
                            json={"type": "end-call"},
                            headers=live.auth(),
                        )
                        assert ended.status == 200, await ended.text()
        assert statuses == ["connecting", "in-progress", "ended"]
        await wait_until(lambda: len(receiver.accepted) >= 4, timeout=20)
    finally:
        await live.client.close()
        await receiver.stop()
    # Deliveries run concurrently: order them by when each event happened.
    bodies = sorted((json.loads(r.body) for r in receiver.requests), key=lambda b: b["timestamp"])
    updates = [b["data"]["status"] for b in bodies if b["type"] == "status-update"]
    assert updates == ["connecting", "in-progress", "ended"]
    (report,) = [b for b in bodies if b["type"] == "end-of-call-report"]
    assert report["call_id"] == call_id
    assert report["data"]["end_reason"] == "api-end-call"
    assert receiver.rejected == 0
    assert set(receiver.accepted.values()) == {1}
