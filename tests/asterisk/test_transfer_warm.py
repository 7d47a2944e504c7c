"""Warm transfer on the lab Asterisk: the agent is briefed, then accepts or declines by DTMF."""

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
from voicedock.pbx.asterisk.media.legs import leg_id
from voicedock.pbx.base import PbxEventKind, TransferTarget
from voicedock.pipeline.providers.base import ProviderUnavailableError
from voicedock_lab.server import LabAsterisk

pytestmark = pytest.mark.asterisk

BRIEFING = {"briefing": "The caller asks about invoice forty two."}


def warm(destination: str) -> TransferTarget:
    return TransferTarget(destination, internal=True, mode="warm", extra=dict(BRIEFING))


async def test_warm_accept_bridges_caller_and_agent_without_voicedock(lab: LabAsterisk) -> None:
    before = set(lab.recordings_dir.glob("warmaccept-*-rx.wav"))
    async with running_pbx(lab) as (pbx, events):
        # The caller's line echoes: once bridged, the agent hears its demo-thanks back.
        async with answered_call_with_media(pbx, events, ECHOES) as (call, leg, _media):
            await pbx.transfer(call.call_id, warm("warmaccept"))
            done = await events.wait(call.call_id, PbxEventKind.TRANSFERRED, within=30)
            assert done.detail == "warmaccept"
            agent, agent_bridge = leg_id(call.call_id, "agent"), leg_id(call.call_id, "warm")
            assert await bridge_members(pbx, agent_bridge) == {call.call_id, agent}
            async with asyncio.timeout(5):
                while leg.channel_id in await channel_ids(pbx):
                    await asyncio.sleep(0.05)
            assert leg_id(call.call_id, "agentmedia") not in await channel_ids(pbx)
            assert await bridge_members(pbx, leg.bridge_id) is None
        recording = await new_file(lab.recordings_dir, "warmaccept-*-rx.wav", before)
        await asyncio.sleep(4)  # the agent's demo-thanks (5.5 s) returns through the caller
        await pbx.ari.hangup_channel(call.call_id)
        async with asyncio.timeout(5):  # the agent's leg and bridge follow the caller
            while agent in await channel_ids(pbx) or await bridge_members(pbx, agent_bridge):
                await asyncio.sleep(0.05)
    assert not events.of(call.call_id, PbxEventKind.TRANSFER_FAILED)
    await asyncio.sleep(0.3)
    # The agent pressed 1 two seconds after answering; from then on it hears the caller.
    assert voiced_seconds(recording, after=2.5) > 0.5, voiced_seconds(recording)


@pytest.mark.parametrize(
    ("agent", "outcome"),
    [
        ("warmdecline", "warm-declined"),
        ("warmhangup", "warm-agent-hung-up"),
        ("busyagent", "warm-no-answer"),
    ],
)
async def test_warm_decline_brings_the_caller_back_to_the_assistant(
    lab: LabAsterisk, agent: str, outcome: str
) -> None:
    async with (
        running_pbx(lab) as (pbx, events),
        answered_call_with_media(pbx, events) as (call, leg, media),
    ):
        await pbx.transfer(call.call_id, warm(agent))
        failed = await events.wait(call.call_id, PbxEventKind.TRANSFER_FAILED, within=30)
        assert failed.detail == outcome
        async with asyncio.timeout(5):
            while (await bridge_members(pbx, leg.bridge_id) or set()) != {
                call.call_id,
                leg.channel_id,
            }:
                await asyncio.sleep(0.05)
        agent_legs = {leg_id(call.call_id, "agent"), leg_id(call.call_id, "agentmedia")}
        async with asyncio.timeout(5):  # hung up, and destroyed a moment later
            while agent_legs & await channel_ids(pbx):
                await asyncio.sleep(0.05)
        assert await bridge_members(pbx, leg_id(call.call_id, "warm")) is None
        assert not media.closed
        assert not events.of(call.call_id, PbxEventKind.TRANSFERRED)
        await pbx.ari.hangup_channel(call.call_id)
        await events.wait(call.call_id, PbxEventKind.HANGUP)


@pytest.mark.parametrize(
    ("error", "agent", "outcome"),
    [
        (ProviderUnavailableError("no voice"), "warmdecline", "warm-declined"),
        (RuntimeError("bug"), "warmdecline", "warm-error"),
    ],
)
async def test_a_broken_briefing_voice_never_leaves_the_caller_on_hold(
    lab: LabAsterisk, error: Exception, agent: str, outcome: str
) -> None:
    async def broken(text: str) -> tuple[bytes, int]:
        raise error

    async with (
        running_pbx(lab) as (pbx, events),
        answered_call_with_media(pbx, events) as (call, leg, _media),
    ):
        pbx.transfers.dialogue.synthesize = broken
        await pbx.transfer(call.call_id, warm(agent))
        failed = await events.wait(call.call_id, PbxEventKind.TRANSFER_FAILED, within=30)
        assert failed.detail == outcome
        async with asyncio.timeout(5):
            while (await bridge_members(pbx, leg.bridge_id) or set()) != {
                call.call_id,
                leg.channel_id,
            }:
                await asyncio.sleep(0.05)
        await pbx.ari.hangup_channel(call.call_id)
        await events.wait(call.call_id, PbxEventKind.HANGUP)


async def test_an_agent_hanging_up_after_the_briefing_ends_the_attempt_at_once(
    lab: LabAsterisk,
) -> None:
    async def short(text: str) -> tuple[bytes, int]:
        return b"\x00\x00" * 800, 8000  # 0.1 s: the decision window is open when it hangs up

    async with (
        running_pbx(lab) as (pbx, events),
        answered_call_with_media(pbx, events) as (call, _leg, _media),
    ):
        pbx.transfers.dialogue.synthesize = short
        started = asyncio.get_running_loop().time()
        await pbx.transfer(call.call_id, warm("warmhangup"))
        failed = await events.wait(call.call_id, PbxEventKind.TRANSFER_FAILED, within=30)
        assert failed.detail == "warm-agent-hung-up"
        assert asyncio.get_running_loop().time() - started < 5  # not the 20 s decision window
        await pbx.ari.hangup_channel(call.call_id)
        await events.wait(call.call_id, PbxEventKind.HANGUP)


async def test_an_adapter_without_a_warm_dialogue_beeps_and_the_agent_accepts_by_digit(
    lab: LabAsterisk,
) -> None:
    async with (
        running_pbx(lab) as (pbx, events),
        answered_call_with_media(pbx, events) as (call, _leg, _media),
    ):
        pbx.transfers.dialogue = None  # an AsteriskPbx built by hand: a beep, digits alone
        await pbx.transfer(call.call_id, warm("warmaccept"))
        done = await events.wait(call.call_id, PbxEventKind.TRANSFERRED, within=30)
        assert done.detail == "warmaccept"
        agent_bridge = leg_id(call.call_id, "warm")
        assert await bridge_members(pbx, agent_bridge) == {
            call.call_id,
            leg_id(call.call_id, "agent"),
        }
        await pbx.ari.hangup_channel(call.call_id)
    assert not events.of(call.call_id, PbxEventKind.TRANSFER_FAILED)
