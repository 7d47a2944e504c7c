"""Connection loss and PBX restart with live calls: no duplicate call, state reconciled."""

from __future__ import annotations

import asyncio

import pytest

from pbx.lab_calls import ANSWERS, request, running_pbx
from voicedock.pbx.base import PbxEventKind

pytestmark = pytest.mark.asterisk


async def _channel_ids(pbx) -> list[str]:
    return [c.id for c in await pbx.ari.list_channels()]


async def _until(predicate, within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_ari_websocket_drop_reconciles_calls_that_ended_in_the_gap(lab):
    async with running_pbx(lab, backoff=1.0) as (pbx, events):
        ended, kept = request(ANSWERS, timeout=10), request(ANSWERS, timeout=10)
        for call in (ended, kept):
            await pbx.originate(call)
            await events.wait(call.call_id, PbxEventKind.ANSWERED)
        await pbx.ari.drop_events_connection()
        await pbx.ari.hangup_channel(ended.call_id)  # ends while we hear no events
        hangup = await events.wait(ended.call_id, PbxEventKind.HANGUP, within=10)
        assert hangup.detail == "reconciled"
        assert pbx.ari.connect_count == 2
        assert not events.of(kept.call_id, PbxEventKind.HANGUP)
        ids = await _channel_ids(pbx)
        assert ids.count(kept.call_id) == 1
        assert ended.call_id not in ids
        await pbx.hangup(kept.call_id)  # events flow again after the reconnect
        assert (await events.wait(kept.call_id, PbxEventKind.HANGUP)).cause == 16
        assert len(events.of(ended.call_id, PbxEventKind.HANGUP)) == 1


@pytest.mark.parametrize("drop_when", ["after-answer", "right-after-queued"])
async def test_ami_drop_never_places_a_second_call(lab, drop_when):
    async with running_pbx(lab, "ami") as (pbx, events):
        assert pbx.ami is not None
        call = request(ANSWERS, timeout=10)
        await pbx.originate(call)
        if drop_when == "after-answer":
            await events.wait(call.call_id, PbxEventKind.ANSWERED)
        pbx.ami.drop_connection()
        await _until(lambda: pbx.ami is not None and pbx.ami.connect_count >= 2)
        await events.wait(call.call_id, PbxEventKind.ANSWERED)
        await asyncio.sleep(1.0)  # a re-sent Originate would have shown up by now
        ids = await _channel_ids(pbx)
        assert ids.count(call.call_id) == 1
        concise = lab.cli("core show channels concise")
        assert concise.count(f"outbound,{call.call_id}") <= 1
        assert not events.of(call.call_id, PbxEventKind.HANGUP)
        assert len(events.of(call.call_id, PbxEventKind.ANSWERED)) == 1
        await pbx.hangup(call.call_id)
        hangup = await events.wait(call.call_id, PbxEventKind.HANGUP)
        assert hangup.cause == 16
        await asyncio.sleep(0.3)
        assert len(events.of(call.call_id, PbxEventKind.HANGUP)) == 1


async def test_asterisk_restart_ends_live_calls_and_the_adapter_recovers(lab):
    async with running_pbx(lab, "ami") as (pbx, events):
        call = request(ANSWERS, timeout=10)
        await pbx.originate(call)
        await events.wait(call.call_id, PbxEventKind.ANSWERED)
        try:
            await asyncio.to_thread(lab.down)
            await asyncio.to_thread(lab.up, timeout=60)
        finally:
            if not lab.status().running:
                await asyncio.to_thread(lab.up, timeout=60)
        hangup = await events.wait(call.call_id, PbxEventKind.HANGUP, within=20)
        assert hangup.detail in ("pbx-restart", "")
        await events.wait("", PbxEventKind.PBX_RESTARTED, within=20)
        await pbx.ari.wait_registered(20)
        assert pbx.ami is not None
        await pbx.ami.wait_connected(20)
        again = request(ANSWERS, timeout=10)
        await pbx.originate(again)
        await events.wait(again.call_id, PbxEventKind.ANSWERED)
        await pbx.hangup(again.call_id)
        assert (await events.wait(again.call_id, PbxEventKind.HANGUP)).cause == 16
