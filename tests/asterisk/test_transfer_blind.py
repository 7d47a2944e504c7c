"""Blind transfer on the lab Asterisk: ARI continue into the transfers context, outcome watched."""

from __future__ import annotations

import asyncio

import pytest

from asterisk.transfer_helpers import (
    answered_call_with_media,
    bridge_members,
    channel_ids,
    new_file,
    voiced_seconds,
)
from pbx.lab_calls import ECHOES, running_pbx
from voicedock.pbx.base import PbxEventKind, TransferTarget
from voicedock_lab.server import LabAsterisk

pytestmark = pytest.mark.asterisk


async def test_blind_to_sales_hands_the_caller_over_and_removes_the_media_leg(
    lab: LabAsterisk,
) -> None:
    before = set(lab.recordings_dir.glob("sales-*-rx.wav"))
    async with running_pbx(lab) as (pbx, events):
        # The caller's line echoes: sales hears its own greeting back whenever the transfer
        # lands (a caller who spoke only at the answer could be silent by then under load).
        async with answered_call_with_media(pbx, events, ECHOES) as (call, leg, media):
            await pbx.transfer(call.call_id, TransferTarget("sales", internal=True))
            done = await events.wait(call.call_id, PbxEventKind.TRANSFERRED)
            assert done.detail == "sales"
            async with asyncio.timeout(5):
                while leg.channel_id in await channel_ids(pbx):
                    await asyncio.sleep(0.05)
            assert await bridge_members(pbx, leg.bridge_id) is None
            async with asyncio.timeout(5):
                while not media.closed:
                    await asyncio.sleep(0.05)
        recording = await new_file(lab.recordings_dir, "sales-*-rx.wav", before)
        # Sales plays demo-thanks (5.5 s) on answering; the caller's line returns it.
        await asyncio.sleep(3)
        assert call.call_id in await channel_ids(pbx)
        assert not events.of(call.call_id, PbxEventKind.TRANSFER_FAILED)
        await pbx.ari.hangup_channel(call.call_id)
        await events.wait(call.call_id, PbxEventKind.HANGUP)
    await asyncio.sleep(0.3)  # MixMonitor closes the file after the hang-up
    assert voiced_seconds(recording) > 1.0


async def test_blind_to_a_busy_target_brings_the_caller_back(lab: LabAsterisk) -> None:
    async with (
        running_pbx(lab) as (pbx, events),
        answered_call_with_media(pbx, events) as (call, leg, media),
    ):
        await pbx.transfer(call.call_id, TransferTarget("busyagent", internal=True))
        failed = await events.wait(call.call_id, PbxEventKind.TRANSFER_FAILED)
        assert failed.detail == "dialstatus=BUSY"
        async with asyncio.timeout(5):
            while (await bridge_members(pbx, leg.bridge_id) or set()) != {
                call.call_id,
                leg.channel_id,
            }:
                await asyncio.sleep(0.05)
        assert not media.closed
        assert not events.of(call.call_id, PbxEventKind.TRANSFERRED)
        # Caller audio flows to the assistant again.
        frames = 0
        async with asyncio.timeout(5):
            async for _ in media.inbound_audio():
                frames += 1
                if frames >= 25:
                    break
        await pbx.ari.hangup_channel(call.call_id)
        await events.wait(call.call_id, PbxEventKind.HANGUP)
