"""``AsteriskPbx.adopt_call`` on the real lab: a new adapter takes over an answered call that a
previous one (a killed voicedock) left in the Stasis app, media leg and bridge included."""

from __future__ import annotations

import asyncio

import pytest

from pbx.lab_calls import ANSWERS, new_call_id, request, running_pbx
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import PbxEventKind, ResumablePbx
from voicedock_lab.server import LabAsterisk

pytestmark = pytest.mark.asterisk


async def listed(pbx: AsteriskPbx) -> set[str]:
    """Ids of every channel and bridge the lab lists."""
    ids = {c.id for c in await pbx.ari.list_channels()}
    bridges = await pbx.ari.request("GET", "/bridges")
    assert isinstance(bridges, list)
    return ids | {str(b["id"]) for b in bridges}


@pytest.mark.timeout(60)
async def test_a_new_adapter_adopts_the_call_a_previous_one_left_and_owns_it(
    lab: LabAsterisk,
) -> None:
    async with running_pbx(lab) as (first, events):
        call = request(ANSWERS)
        await first.originate(call)
        await events.wait(call.call_id, PbxEventKind.ANSWERED)
        old = await first.open_media(call.call_id)
        assert {call.call_id, old.channel_id, old.bridge_id} <= await listed(first)
    # The first adapter is gone (as after kill -9): the call, its media leg and bridge stay.

    async with running_pbx(lab) as (second, later):
        assert isinstance(second, ResumablePbx)
        assert not await second.adopt_call(new_call_id(), None)  # no such channel
        assert await second.adopt_call(call.call_id, None)
        left = await listed(second)
        assert call.call_id in left  # the caller is still there ...
        assert not {old.channel_id, old.bridge_id} & left  # ... the old media is not
        assert not await second.adopt_call(call.call_id, None)  # already this run's
        assert call.call_id in await second.live_call_ids()
        # A fresh media leg and bridge under the same ids, as for a call of this run.
        fresh = await second.open_media(call.call_id)
        assert (fresh.channel_id, fresh.bridge_id) == (old.channel_id, old.bridge_id)
        await second.hangup(call.call_id)
        hangup = await later.wait(call.call_id, PbxEventKind.HANGUP)
        assert hangup.cause == 16
        for _ in range(40):
            if not {call.call_id, fresh.channel_id, fresh.bridge_id} & await listed(second):
                break
            await asyncio.sleep(0.05)
        assert not {call.call_id, fresh.channel_id, fresh.bridge_id} & await listed(second)


@pytest.mark.timeout(60)
async def test_a_call_whose_caller_hung_up_meanwhile_is_not_adopted(lab: LabAsterisk) -> None:
    async with running_pbx(lab) as (first, events):
        call = request(ANSWERS)
        await first.originate(call)
        await events.wait(call.call_id, PbxEventKind.ANSWERED)
    async with running_pbx(lab) as (second, _):
        assert await second.ari.hangup_channel(call.call_id)  # the caller leaves
        assert not await second.adopt_call(call.call_id, None)
        assert call.call_id not in await second.live_call_ids()
