"""Usage where the user stands: calls placed through REST on the lab Asterisk (offline speech),
spoken to and ended, then ``GET /usage`` for today counts them as their records show them."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from e2e.conftest import LiveService
from fakes.world import SUPPORT_ID

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

SAID = ("Your parcel leaves the depot today.", "Thank you for calling, goodbye.")
# The lab's silent party: nothing it says cuts the greeting or the say (a talking party's
# first words may barge in on the greeting, which then counts only what was heard).
SILENT = "+31612345675"


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _wait(live: LiveService, call_id: str, ready: Any, within: float) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    try:
        async with asyncio.timeout(within):
            while not ready(seen := await live.call(call_id)):
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"call {call_id} not ready: {seen}") from None
    return seen


def _spoken(call: dict[str, Any], text: str) -> bool:
    return any(m["role"] == "assistant" and m["content"] == text for m in call["messages"])


async def _call_saying(live: LiveService, text: str) -> str:
    status, body = await live.post(
        "/calls/outbound", {"destination": SILENT, "assistant_id": SUPPORT_ID}
    )
    assert status == 200, body
    call_id = str(body["call_id"])
    await _wait(live, call_id, lambda c: _spoken(c, "Hi!"), within=30)  # the first message
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "say", "content": text})
    assert status == 200, body
    await _wait(live, call_id, lambda c: _spoken(c, text), within=30)
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    return call_id


async def test_usage_of_today_matches_the_calls_placed(live_ari: LiveService) -> None:
    live = live_ari
    call_ids = [await _call_saying(live, text) for text in SAID]
    records = [
        await _wait(live, call_id, lambda c: c["usage"]["tts"], within=30) for call_id in call_ids
    ]
    for record in records:
        assert record["status"] == "ended", record
    connected = [(_time(r["ended_at"]) - _time(r["started_at"])).total_seconds() for r in records]
    spoken = sum(
        len(m["content"]) for r in records for m in r["messages"] if m["role"] == "assistant"
    )
    assert spoken >= len("Hi!") * 2 + sum(len(t) for t in SAID)

    status, report = await live.get("/usage")
    assert status == 200, report
    today = datetime.now(UTC).date().isoformat()
    [group] = report["groups"]
    assert group["key"] == today
    assert group["calls"] == len(SAID)
    assert abs(group["connected_seconds"] - sum(connected)) < 1.0, (group, connected)
    assert group["billable_seconds"] == sum(math.ceil(round(s, 3)) for s in connected), group
    assert group["tts"] == [
        {"provider": records[0]["usage"]["tts"][0]["provider"], "characters": spoken}
    ]
    heard = sum(  # the caller's turns, as the transcript events time them
        (_time(e["data"]["ended_at"]) - _time(e["data"]["started_at"])).total_seconds()
        for r in records
        for e in r["events"]
        if e["type"] == "transcript" and e["data"]["role"] == "user"
    )
    [stt] = group["stt"]
    assert stt["provider"] == records[0]["usage"]["stt"][0]["provider"]
    assert abs(stt["audio_seconds"] - heard) < 0.01, (stt, heard)
    [outcome] = group["by_outcome"]
    assert (outcome["direction"], outcome["status"], outcome["calls"]) == ("outbound", "ended", 2)
    assert report["totals"]["calls"] == len(SAID)

    status, by_assistant = await live.get("/usage?group_by=assistant")
    assert status == 200, by_assistant
    assert [(g["key"], g["calls"]) for g in by_assistant["groups"]] == [(SUPPORT_ID, 2)]
