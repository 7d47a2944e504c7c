"""Inbound calls reach the handler and are answered; blind transfer leaves voicedock's hands."""

from __future__ import annotations

import asyncio

import pytest

from pbx.lab_calls import ANSWERS, request, running_pbx
from voicedock.pbx.base import InboundCall, PbxEventKind, TransferTarget

pytestmark = pytest.mark.asterisk


async def test_rejected_inbound_call_is_hung_up(lab):
    async with running_pbx(lab) as (pbx, events):
        calls: list[InboundCall] = []

        async def reject(call: InboundCall) -> str | None:
            calls.append(call)
            return None

        pbx.set_inbound_handler(reject)
        await asyncio.to_thread(lab.originate_inbound, lab.settings.service_dids[0])
        async with asyncio.timeout(10):
            while not calls:
                await asyncio.sleep(0.02)
        ref = calls[0].pbx_call_ref
        async with asyncio.timeout(10):
            while ref in {c.id for c in await pbx.ari.list_channels()}:
                await asyncio.sleep(0.05)
        assert not events.events


async def test_blind_transfer_continues_in_the_transfer_context(lab):
    async with running_pbx(lab) as (pbx, events):
        call = request(ANSWERS)
        await pbx.originate(call)
        await events.wait(call.call_id, PbxEventKind.ANSWERED)
        await pbx.transfer(call.call_id, TransferTarget(destination=ANSWERS))
        await events.wait(call.call_id, PbxEventKind.TRANSFERRED)
        await pbx.hangup(call.call_id)  # must not hang up the transferred caller
        await asyncio.sleep(0.5)
        assert call.call_id in {c.id for c in await pbx.ari.list_channels()}
        assert not events.of(call.call_id, PbxEventKind.HANGUP)
        await pbx.ari.hangup_channel(call.call_id)
        await events.wait(call.call_id, PbxEventKind.HANGUP)
