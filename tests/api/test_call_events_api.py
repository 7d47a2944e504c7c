"""``GET /calls/{id}/events``: Server-Sent Events of a call through the real app (FakePbx)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from api.conftest import Api
from fakes.pbx import FakePbx
from fakes.turns import Turn
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings, org_id
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.api.models.calls import control_command
from voicedock.api.routes import call_events as events_routes
from voicedock.api.routes.call_events import encode_event, last_event_id
from voicedock.domain.records import CallEvent
from voicedock.service import Service

pytestmark = pytest.mark.unit


def parse_stream(text: str) -> list[dict[str, Any]]:
    """The messages of an SSE body: id, event and the JSON data of each."""
    messages = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if "data" in fields:
            messages.append({**fields, "data": json.loads(fields["data"])})
    return messages


async def place(api: Api) -> str:
    resp = await api.client.post(
        "/calls/outbound",
        json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
        headers=api.auth(),
    )
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def test_stream_follows_the_call_to_its_end(api: Api) -> None:
    call_id = await place(api)
    resp = await api.client.get(f"/calls/{call_id}/events", headers=api.auth())
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")

    async def drive() -> None:
        await asyncio.sleep(0.1)
        await api.pbx.answer(call_id)
        say = control_command({"type": "say", "content": "Hello"})
        await api.service.engine.control.run(org_id(ACME), call_id, say)
        await asyncio.sleep(0.1)
        await api.pbx.hang_up_remote(call_id)

    async with asyncio.timeout(10):
        driver = asyncio.create_task(drive())
        text = (await resp.read()).decode()  # the server ends the stream after "ended"
        await driver
    messages = parse_stream(text)
    statuses = [m["data"]["data"]["to"] for m in messages if m["event"] == "status"]
    assert statuses == ["connecting", "in-progress", "ended"]
    assert [m["data"]["data"]["type"] for m in messages if m["event"] == "control"] == ["say"]
    seqs = [int(m["id"]) for m in messages]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert all(m["data"]["call_id"] == call_id for m in messages)
    assert text.startswith("retry: ")

    # Resuming after the first event sends only what followed it.
    resumed = await api.client.get(
        f"/calls/{call_id}/events", headers={**api.auth(), "Last-Event-ID": str(seqs[0])}
    )
    again = parse_stream((await resumed.read()).decode())
    assert [int(m["id"]) for m in again] == seqs[1:]
    # Nothing left after the last one: 204 stops an EventSource from reconnecting.
    done = await api.client.get(
        f"/calls/{call_id}/events", headers={**api.auth(), "Last-Event-ID": str(seqs[-1])}
    )
    assert done.status == 204


async def test_other_organizations_and_unknown_calls_are_404(api: Api) -> None:
    call_id = await place(api)
    other = await api.client.get(f"/calls/{call_id}/events", headers=api.auth(api.globex_key))
    assert other.status == 404
    assert (await other.json())["error"] == "Call not found"
    missing = await api.client.get("/calls/call-nope/events", headers=api.auth())
    assert missing.status == 404
    assert (await api.client.get(f"/calls/{call_id}/events")).status == 401


async def test_idle_stream_sends_keepalive_comments(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_routes, "KEEPALIVE_SECONDS", 0.2)
    call_id = await place(api)
    resp = await api.client.get(f"/calls/{call_id}/events", headers=api.auth())
    seen = b""
    async with asyncio.timeout(5):
        while b": keep-alive" not in seen:
            seen += await resp.content.readany()
    resp.close()
    assert b"event: status" in seen


def test_encode_event_is_one_sse_message() -> None:
    event = CallEvent(
        "call-1",
        "transcript",
        {"role": "user", "content": "line one\nline two"},
        datetime(2026, 1, 1, tzinfo=UTC),
        seq=7,
    )
    raw = encode_event(event).decode()
    assert raw.endswith("\n\n")
    assert raw.count("\n") == 4
    (message,) = parse_stream(raw)
    assert message["id"] == "7"
    assert message["event"] == "transcript"
    assert message["data"]["data"]["content"] == "line one\nline two"
    assert message["data"]["timestamp"] == "2026-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("header", "seq"), [(None, 0), ("12", 12), (" 3 ", 3), ("abc", 0), ("-1", 0), ("9" * 30, 0)]
)
def test_last_event_id(header: str | None, seq: int) -> None:
    assert last_event_id(header) == seq


async def test_ended_call_sends_what_is_left_and_ends(api: Api) -> None:
    call_id = await place(api)
    await api.pbx.answer(call_id)
    await api.pbx.hang_up_remote(call_id)
    # A last utterance stored after the hang-up: after the terminal status.
    await api.service.engine.records.store_transcript_turn(call_id, Turn("user", "Bye", 1.0, 2.0))
    events = await api.service.store.list_events(call_id)
    ended_seq = next(e.seq for e in events if e.data.get("to") == "ended")
    async with asyncio.timeout(5):
        resp = await api.client.get(
            f"/calls/{call_id}/events", headers={**api.auth(), "Last-Event-ID": str(ended_seq)}
        )
        messages = parse_stream((await resp.read()).decode())
    assert [(m["event"], m["data"]["data"]["content"]) for m in messages] == [("transcript", "Bye")]


async def test_a_stream_the_client_drops_frees_its_place_without_handler_cancellation(
    tmp_path: Path,
) -> None:
    """As ``voicedock serve`` runs the app (``api/serve.py``: handlers are not cancelled when the
    client goes away), a dropped stream gives its place back within a poll, not at the next
    keep-alive 15 s later."""
    settings = make_settings(f"sqlite:///{tmp_path / 'caps.db'}")
    settings.limits.open_streams_per_key = 1
    pbx = FakePbx()
    services: list[Service] = []

    async def factory() -> Service:
        services.append(await Service.open(settings, pbx=pbx))
        return services[-1]

    runner = web.AppRunner(create_app(settings, factory))  # handler_cancellation off
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        key, _ = await issue_api_key(services[0].store, ACME)
        auth = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession() as http:
            body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
            async with http.post(f"{base}/calls/outbound", json=body, headers=auth) as placed:
                call_id = (await placed.json())["call_id"]
            url = f"{base}/calls/{call_id}/events"
            first = await http.get(url, headers=auth)
            assert first.status == 200
            refused = await http.get(url, headers=auth)
            assert refused.status == 429
            assert refused.headers["Retry-After"] == "5"
            assert (await refused.json())["error"] == "Too many streams"
            first.close()  # the client goes away
            async with asyncio.timeout(3):
                while (again := await http.get(url, headers=auth)).status == 429:
                    again.release()
                    await asyncio.sleep(0.1)
            assert again.status == 200
            again.close()
    finally:
        await runner.cleanup()
