"""Transfers over REST on the real lab FreeSWITCH: blind (uuid_transfer into the production
voicedock_transfer context) and warm (the agent leg over mod_loopback, the agent presses 1 or
2), to the lab's internal targets (``dialplan/lab/freeswitch_transfers.xml``)."""

from __future__ import annotations

from typing import Any

import pytest

from freeswitch.live_service import TERMINAL, until
from freeswitch_lab.lab_service import LabService
from voicedock.lab.freeswitch_config import ANSWERS, SILENT

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(60)]


async def answered(live: LabService, destination: str = ANSWERS) -> str:
    call_id = await live.place(destination)
    call = await live.wait_status(call_id, ("in-progress", *TERMINAL))
    assert call["status"] == "in-progress", call
    return call_id


async def transfer_events(live: LabService, call_id: str) -> list[dict[str, Any]]:
    return [e.data for e in await live.service.store.list_events(call_id) if e.type == "transfer"]


async def control(live: LabService, call_id: str, body: dict[str, Any]) -> None:
    status, reply = await live.post(f"/calls/{call_id}/control", body)
    assert status == 200, reply


async def hang_up_at_freeswitch(live: LabService, channel: str) -> None:
    """The caller now talks to the target, not to us: end that call at FreeSWITCH."""
    await live.fs.esl.api(f"uuid_kill {channel}")


async def test_blind_transfer_to_sales_ends_the_call_as_transferred(live: LabService) -> None:
    call_id = await answered(live)
    channel = await live.channel_of(call_id)
    await control(live, call_id, {"type": "transfer", "destination": "sales"})
    ended = await live.wait_status(call_id, TERMINAL, within=20)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred"), ended
    assert ended["transferred_to"] == "sales"
    assert channel in await live.channels()  # the caller stays, bridged to sales
    await hang_up_at_freeswitch(live, channel)


async def test_blind_transfer_to_a_busy_agent_keeps_the_call(live: LabService) -> None:
    call_id = await answered(live)
    await control(live, call_id, {"type": "transfer", "destination": "busyagent"})
    await until(lambda: _has_transfer_event(live, call_id), within=20)
    assert await transfer_events(live, call_id) == [
        {"result": "failed", "detail": "dialstatus=BUSY"}  # the words Asterisk gives
    ]
    assert (await live.call(call_id))["status"] == "in-progress"
    await control(live, call_id, {"type": "end-call"})
    await live.wait_status(call_id, ("ended",), within=20)


async def _has_transfer_event(live: LabService, call_id: str) -> bool:
    return bool(await transfer_events(live, call_id))


async def test_warm_transfer_accepted_by_the_agent(live: LabService) -> None:
    call_id = await answered(live)
    channel = await live.channel_of(call_id)
    body = {"type": "transfer", "destination": "warmaccept", "mode": "warm"}
    await control(live, call_id, body)
    ended = await live.wait_status(call_id, TERMINAL, within=40)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred"), ended
    assert ended["transferred_to"] == "warmaccept"
    # uuid_bridge answers +OK at once; the bridge forms when the caller's application yields,
    # i.e. after the assistant's audio file already playing on it ends (seconds, on the lab).
    await until(lambda: _bridged(live, channel), within=20)
    await hang_up_at_freeswitch(live, channel)  # the agent's leg follows (hangup_after_bridge)


async def _bridged(live: LabService, channel: str) -> bool:
    rows = [c.raw for c in await live.fs.esl.show_channels() if c.uuid == channel]
    return bool(rows) and rows[0].get("application") == "uuid_bridge"


async def test_warm_transfer_declined_keeps_the_call(live: LabService) -> None:
    call_id = await answered(live, SILENT)
    await control(live, call_id, {"type": "transfer", "destination": "warmdecline", "mode": "warm"})
    await until(lambda: _has_transfer_event(live, call_id), within=40)
    assert await transfer_events(live, call_id) == [{"result": "failed", "detail": "warm-declined"}]
    assert (await live.call(call_id))["status"] == "in-progress"
    await control(live, call_id, {"type": "end-call"})
    await live.wait_status(call_id, ("ended",), within=20)
