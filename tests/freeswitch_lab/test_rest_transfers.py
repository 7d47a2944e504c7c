"""Transfers over REST on the real lab FreeSWITCH: blind (uuid_transfer into the production
voicedock_transfer context) and warm (the agent leg over mod_loopback, the agent presses 1 or
2, or says yes), to the lab's internal targets (``dialplan/lab/freeswitch_transfers.xml``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from e2e.audio_helpers import require_offline_speech
from freeswitch_lab.lab_service import LabService
from pbx.freeswitch.live_service import TERMINAL, until
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.settings import EslSettings
from voicedock.pbx.freeswitch.esl.wire import EslEvent
from voicedock_lab.freeswitch_config import ANSWERS, SILENT

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


@contextlib.asynccontextmanager
async def watching(
    live: LabService, react: Callable[[EslClient, EslEvent], Any] | None = None
) -> AsyncIterator[list[EslEvent]]:
    """Every channel event (and API command) FreeSWITCH reports, on a connection of the
    test's own; ``react`` may act on each as it arrives."""
    lab = live.lab
    events = ("CHANNEL_BRIDGE", "CHANNEL_PARK", "CHANNEL_EXECUTE", "CHANNEL_HANGUP", "DTMF", "API")
    esl = EslClient(EslSettings("127.0.0.1", lab.esl_port, lab.esl_password, events=events))
    seen: list[EslEvent] = []
    subscription = esl.subscribe()

    async def collect() -> None:
        async for event in subscription:
            seen.append(event)
            if react is not None:
                await react(esl, event)

    await esl.start()
    async with asyncio.TaskGroup() as tasks:
        collector = tasks.create_task(collect())
        try:
            yield seen
        finally:
            collector.cancel()
            await subscription.aclose()
            await esl.aclose()


def bridges_of(seen: list[EslEvent], channel: str) -> list[EslEvent]:
    return [e for e in seen if e.name == "CHANNEL_BRIDGE" and e.unique_id == channel]


async def warm_transfer_ended(
    live: LabService, agent: str, within: float
) -> tuple[str, dict[str, Any], list[EslEvent]]:
    """A call warm-transferred to ``agent`` over REST, until it ended: (the caller's channel,
    the ended call, what FreeSWITCH reported meanwhile)."""
    call_id = await answered(live)
    channel = await live.channel_of(call_id)
    body = {"type": "transfer", "destination": agent, "mode": "warm"}
    async with watching(live) as seen:
        await control(live, call_id, body)
        ended = await live.wait_status(call_id, TERMINAL, within=within)
        if ended.get("end_reason") == "transferred":
            # The service reports the transfer on the caller's CHANNEL_BRIDGE; this test's own
            # Event Socket connection may read the same event a moment later.
            with contextlib.suppress(TimeoutError):
                await until(lambda: bool(bridges_of(seen, channel)), within=3)
    return channel, ended, seen


async def test_warm_transfer_accepted_by_the_agent(live: LabService) -> None:
    channel, ended, seen = await warm_transfer_ended(live, "warmaccept", within=40)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred"), ended
    assert ended["transferred_to"] == "warmaccept"
    # Reported only once FreeSWITCH bridged the caller to the agent leg, not at uuid_bridge's
    # +OK (the bridge forms some 20-60 ms later on the lab).
    [bridge] = bridges_of(seen, channel)
    bridged_at = int(bridge.get("Event-Date-Timestamp") or 0) / 1e6
    transferred_at = datetime.fromisoformat(ended["transferred_at"]).timestamp()
    assert transferred_at >= bridged_at - 0.001, (transferred_at, bridged_at)
    await until(lambda: _bridged(live, channel), within=5)  # show channels lags its events
    await hang_up_at_freeswitch(live, channel)  # the agent's leg follows (hangup_after_bridge)


async def test_warm_transfer_accepted_by_the_agent_s_voice(live: LabService) -> None:
    """warmsayyes presses no digit: it says "Yes, put them through." 1.5 s into the briefing,
    and the offline recognizer (faster-whisper, as in production) hears it on the agent's
    stream. The caller is then bridged to the agent at FreeSWITCH."""
    require_offline_speech()
    offline = live.fs.warm.dialogue.transcribe
    heard: list[str] = []

    async def transcribe(pcm: bytes, sample_rate: int) -> str:
        text = await offline(pcm, sample_rate)  # the real offline STT
        heard.append(text)
        return text

    live.fs.warm.dialogue.transcribe = transcribe
    # Well before the briefing plus the 20 s decision window would run out.
    channel, ended, seen = await warm_transfer_ended(live, "warmsayyes", within=30)
    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred"), ended
    assert ended["transferred_to"] == "warmsayyes"
    # All of the answer, its first word too: the agent is heard from their answer on, not
    # only once the briefing is synthesised (then "Put them through." alone arrived).
    assert any("yes" in text.lower() for text in heard), heard
    # FreeSWITCH bridged the caller to the agent's leg (warmsayyes over mod_loopback), and no
    # digit decided it; the agent's phone (the carrier's warmsayyes leg) is still up.
    [bridge] = bridges_of(seen, channel)
    assert (bridge.get("Other-Leg-Channel-Name") or "").startswith("loopback/warmsayyes"), bridge
    assert not [e for e in seen if e.name == "DTMF"]
    await until(lambda: _bridged(live, channel), within=5)
    rows = await live.fs.esl.show_channels()
    assert [c for c in rows if c.raw.get("dest") == "warmsayyes"]
    await hang_up_at_freeswitch(live, channel)


# Three runs: where in the bridge's forming the hang-up lands varies (FreeSWITCH takes a
# different path for an agent leg gone, hanging up, or not answering: switch_ivr_bridge.c).
@pytest.mark.parametrize("_run", range(3))
async def test_warm_transfer_agent_hanging_up_as_the_bridge_forms_keeps_the_call(
    _run: int,
    live: LabService,
) -> None:
    """The agent accepts, and is gone between uuid_bridge's +OK and the bridge: FreeSWITCH
    would hang the caller up (DESTINATION_OUT_OF_ORDER); instead the caller parks again and
    the assistant goes on talking to them."""
    call_id = await answered(live, SILENT)
    channel = await live.channel_of(call_id)
    killed: list[str] = []

    async def hang_up_the_agent(esl: EslClient, event: EslEvent) -> None:
        if event.name == "API" and event.get("API-Command") == "uuid_bridge":
            agent = (event.get("API-Command-Argument") or "").split()[1]
            await esl.api(f"uuid_kill {agent}")
            killed.append(agent)

    body = {"type": "transfer", "destination": "warmaccept", "mode": "warm"}
    async with watching(live, hang_up_the_agent) as seen:
        await control(live, call_id, body)
        await until(lambda: _has_transfer_event(live, call_id), within=40)
        # warm-agent-hung-up, not "bridge -ERR ...": uuid_bridge had answered +OK.
        assert await transfer_events(live, call_id) == [
            {"result": "failed", "detail": "warm-agent-hung-up"}
        ]
        assert killed
        assert not bridges_of(seen, channel)
        assert (await live.call(call_id))["status"] == "in-progress"
        assert channel in await live.channels()
        hangups = [e for e in seen if e.name == "CHANNEL_HANGUP" and e.unique_id == channel]
        assert not hangups, hangups[0].get("Hangup-Cause")
        # The caller still hears the assistant: its stream and playback were kept.
        await control(live, call_id, {"type": "say", "content": "I am still here."})
        await until(lambda: _played_after(seen, channel, killed), within=10)
    await control(live, call_id, {"type": "end-call"})
    await live.wait_status(call_id, ("ended",), within=20)


def _played_after(seen: list[EslEvent], channel: str, killed: list[str]) -> bool:
    kill = next(i for i, e in enumerate(seen) if e.get("API-Command") == "uuid_bridge")
    return any(
        e.name == "CHANNEL_EXECUTE"
        and e.unique_id == channel
        and e.get("Application") == "playback"
        for e in seen[kill:]
    )


async def test_warm_transfer_agent_hanging_up_during_the_briefing_keeps_the_call(
    live: LabService,
) -> None:
    call_id = await answered(live, SILENT)
    channel = await live.channel_of(call_id)
    await control(live, call_id, {"type": "transfer", "destination": "warmhangup", "mode": "warm"})
    await until(lambda: _has_transfer_event(live, call_id), within=40)
    assert await transfer_events(live, call_id) == [
        {"result": "failed", "detail": "warm-agent-hung-up"}
    ]
    assert (await live.call(call_id))["status"] == "in-progress"
    assert channel in await live.channels()
    await control(live, call_id, {"type": "end-call"})
    await live.wait_status(call_id, ("ended",), within=20)


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
