"""Real calls through the whole service: REST API → CallEngine → AsteriskPbx → lab Asterisk."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from e2e.conftest import LiveService, fast_reconnecting_pbx, serve, service_settings
from fakes.world import ACME_NUMBERS, SUPPORT_ID
from pbx.lab_calls import ANSWERS, BUSY, CONGESTION, NO_ANSWER, REJECTED, UNKNOWN
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TERMINAL = ("ended", "failed")


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)


async def get_call(live: LiveService, call_id: str) -> dict[str, Any]:
    resp = await live.client.get(f"/calls/{call_id}", headers=live.auth())
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def wait_status(
    live: LiveService, call_id: str, wanted: tuple[str, ...], within: float = 10.0
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def reached() -> bool:
        seen.update(await get_call(live, call_id))
        return seen["status"] in wanted

    await until(reached, within)
    return seen


async def place(live: LiveService, destination: str, **extra: Any) -> str:
    body = {"destination": destination, "assistant_id": SUPPORT_ID, **extra}
    resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def channel_ids(live: LiveService) -> set[str]:
    return {c.id for c in await live.pbx.ari.list_channels()}


async def bridge_ids(live: LiveService) -> set[str]:
    bridges = await live.pbx.ari.request("GET", "/bridges")
    return {str(b["id"]) for b in bridges} if isinstance(bridges, list) else set()


async def test_outbound_call_is_answered_ended_and_cleaned_up(live: LiveService) -> None:
    channels_before, bridges_before = await channel_ids(live), await bridge_ids(live)
    call_id = await place(live, ANSWERS)
    answered = await wait_status(live, call_id, ("in-progress", *TERMINAL))
    assert answered["status"] == "in-progress"
    assert call_id in await channel_ids(live)
    resp = await live.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=live.auth()
    )
    assert resp.status == 200, await resp.text()
    ended = await wait_status(live, call_id, TERMINAL)
    assert ended["status"] == "ended"
    assert ended["started_at"]
    assert ended["ended_at"]
    assert ended["duration_seconds"] >= 0

    async def lab_is_clean() -> bool:
        new_channels = await channel_ids(live) - channels_before
        return not new_channels and not (await bridge_ids(live) - bridges_before)

    await until(lab_is_clean, within=5)


@pytest.mark.parametrize(
    ("destination", "error"),
    [
        (BUSY, "busy"),
        (CONGESTION, "congestion"),
        (REJECTED, "rejected"),
        (UNKNOWN, "invalid-number"),
        (NO_ANSWER, "no-answer"),  # rings for ring_timeout_seconds (5 s), then fails
    ],
)
async def test_failure_destinations_end_failed_with_the_error(
    live: LiveService, destination: str, error: str
) -> None:
    channels_before = await channel_ids(live)
    started = time.monotonic()
    call_id = await place(live, destination, ring_timeout_seconds=5)
    failed = await wait_status(live, call_id, TERMINAL, within=15)
    assert failed["status"] == "failed"
    assert failed["error"] == error
    # The PBX's own originate timeout, not the engine's later safety net, ended it.
    assert time.monotonic() - started < 7.5

    async def lab_is_clean() -> bool:
        return not (await channel_ids(live) - channels_before)

    await until(lab_is_clean, within=5)


async def test_end_call_on_a_ringing_call_cancels_it_on_the_pbx(live: LiveService) -> None:
    channels_before = await channel_ids(live)
    call_id = await place(live, NO_ANSWER)  # rings, never answers

    async def ringing() -> bool:
        channels = await live.pbx.ari.list_channels()
        return any(c.id == call_id and c.state == "Ringing" for c in channels)

    await until(ringing)
    assert (await get_call(live, call_id))["status"] == "connecting"
    resp = await live.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=live.auth()
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"success": True, "message": "Command sent successfully"}
    call = await get_call(live, call_id)
    assert (call["status"], call["end_reason"], call["error"]) == ("ended", "cancelled", None)
    assert call["started_at"] is None

    async def lab_is_clean() -> bool:  # our leg and the ringing party's leg are both gone
        return not (await channel_ids(live) - channels_before)

    await until(lab_is_clean, within=5)
    await asyncio.sleep(0.5)  # the PBX's own hang-up report changes nothing
    assert (await get_call(live, call_id))["end_reason"] == "cancelled"


async def test_end_call_right_after_placing_cancels_before_any_ringing(
    live: LiveService,
) -> None:
    """The cancel can overtake the PBX (an AMI Originate is only queued): still no leg left."""
    channels_before = await channel_ids(live)
    call_id = await place(live, NO_ANSWER)
    resp = await live.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=live.auth()
    )
    assert resp.status == 200, await resp.text()
    assert (await get_call(live, call_id))["end_reason"] == "cancelled"

    async def lab_is_clean() -> bool:
        return not (await channel_ids(live) - channels_before)

    await until(lab_is_clean, within=5)
    await asyncio.sleep(1.0)
    assert not (await channel_ids(live) - channels_before)  # and nothing rings up later


async def test_inbound_call_is_answered_listed_and_ends_with_the_caller(
    live_ari: LiveService, lab: LabAsterisk
) -> None:
    live = live_ari
    caller_channel = await asyncio.to_thread(lab.originate_inbound, ACME_NUMBERS[0])

    async def listed() -> list[dict[str, Any]]:
        resp = await live.client.get("/calls", headers=live.auth())
        assert resp.status == 200
        return [c for c in (await resp.json())["calls"] if c["caller_phone"] == ANSWERS]

    async def answered() -> bool:
        return any(c["status"] == "in-progress" for c in await listed())

    await until(answered)
    (call,) = await listed()
    assert re.fullmatch(r"call-_\+31612345678_[A-Za-z0-9]{12}", call["id"])
    assert call["assistant_phone"] == ACME_NUMBERS[0]
    await live.pbx.ari.hangup_channel(caller_channel)  # the far side hangs up
    ended = await wait_status(live, call["id"], TERMINAL)
    assert ended["status"] == "ended"
    assert ended["duration_seconds"] >= 0


INJECTIONS: list[dict[str, Any]] = [
    {"destination": "+31612345678&PJSIP/evil", "assistant_id": SUPPORT_ID},
    {"destination": "+31612345678\r\nAction: Originate", "assistant_id": SUPPORT_ID},
    {"destination": "PJSIP/+31612345678@carrier", "assistant_id": SUPPORT_ID},
    {"destination": "${SHELL(id)}", "assistant_id": SUPPORT_ID},
    {"destination": ANSWERS, "assistant_id": f"{SUPPORT_ID}\r\nAction: Originate"},
    {"destination": ANSWERS, "assistant_id": SUPPORT_ID, "number_id": "x\r\nChannel: Local/1"},
]


async def test_injection_payloads_are_refused_before_reaching_the_pbx(
    live_ari: LiveService, lab: LabAsterisk
) -> None:
    live = live_ari
    before = await channel_ids(live)
    count_before = lab.cli("core show channels count")
    for body in INJECTIONS:
        resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
        assert resp.status in (400, 404), (body, resp.status, await resp.text())
    await asyncio.sleep(0.3)  # an originate that slipped through would be on the lab by now
    assert await channel_ids(live) <= before
    assert _count(lab.cli("core show channels count")) <= _count(count_before)
    listed = await (await live.client.get("/calls", headers=live.auth())).json()
    assert listed["calls"] == []


def _count(cli_output: str) -> int:
    match = re.search(r"(\d+) active channels?", cli_output)
    assert match is not None, cli_output
    return int(match.group(1))


async def test_asterisk_restart_fails_the_live_call_and_the_api_keeps_serving(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    settings = service_settings(lab, tmp_path / "e2e.db", "ami")
    live = await serve(settings, fast_reconnecting_pbx(settings))
    try:
        call_id = await place(live, ANSWERS)
        await wait_status(live, call_id, ("in-progress",))
        try:
            # SIGKILL: a graceful stop hangs every channel up first (normal clearing), so
            # only a restart Asterisk could not announce shows up as a new start time.
            pid = lab.status().pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)

            async def exited() -> bool:
                return not lab.status().running

            await until(exited, within=10)
            await asyncio.to_thread(lab.down)
            await asyncio.to_thread(lab.up, timeout=60)
        finally:
            if not lab.status().running:
                await asyncio.to_thread(lab.up, timeout=60)
        failed = await wait_status(live, call_id, TERMINAL, within=20)
        assert failed["status"] == "failed"
        assert failed["error"] == "pbx-restart"
        assert (await live.client.get("/calls", headers=live.auth())).status == 200
        await live.pbx.ari.wait_registered(20)
        assert live.pbx.ami is not None  # this call originates through AMI: wait for it too
        await live.pbx.ami.wait_connected(20)
        assert (await live.client.get("/health")).status == 200  # connected again
        again = await place(live, ANSWERS)
        await wait_status(live, again, ("in-progress",))
        await live.client.post(
            f"/calls/{again}/control", json={"type": "end-call"}, headers=live.auth()
        )
        assert (await wait_status(live, again, TERMINAL))["status"] == "ended"
    finally:
        await live.client.close()
