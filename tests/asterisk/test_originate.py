"""Originate through the real lab Asterisk via ARI and AMI; failures map to the right error."""

from __future__ import annotations

import pytest

from pbx.lab_calls import (
    ANSWERS,
    BUSY,
    CONGESTION,
    NO_ANSWER,
    REJECTED,
    UNKNOWN,
    request,
    running_pbx,
)
from voicedock.errors import PbxUnavailable
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.base import PbxEventKind
from voicedock.pbx.causes import CallError, error_for_unanswered

pytestmark = pytest.mark.asterisk


@pytest.mark.parametrize("via", ["ari", "ami"])
async def test_originate_answer_hangup_reports_cause_16(lab, via):
    async with running_pbx(lab, via) as (pbx, events):
        call = request(ANSWERS)
        await pbx.originate(call)
        await events.wait(call.call_id, PbxEventKind.ANSWERED)
        assert call.call_id in await pbx.live_call_ids()
        await pbx.hangup(call.call_id)
        hangup = await events.wait(call.call_id, PbxEventKind.HANGUP)
        assert hangup.cause == 16
        await pbx.hangup(call.call_id)  # idempotent
        assert len(events.of(call.call_id, PbxEventKind.HANGUP)) == 1
        assert len(events.of(call.call_id, PbxEventKind.ANSWERED)) == 1
        assert call.call_id not in await pbx.live_call_ids()


@pytest.mark.parametrize("via", ["ari", "ami"])
@pytest.mark.parametrize(
    ("destination", "expected", "timeout"),
    [
        (BUSY, CallError.BUSY, 10),
        (CONGESTION, CallError.CONGESTION, 10),
        (REJECTED, CallError.REJECTED, 10),
        (UNKNOWN, CallError.INVALID_NUMBER, 10),
        (NO_ANSWER, CallError.NO_ANSWER, 2),
    ],
)
async def test_failure_destinations_map_to_call_errors(lab, via, destination, expected, timeout):
    async with running_pbx(lab, via) as (pbx, events):
        call = request(destination, timeout=timeout)
        await pbx.originate(call)
        hangup = await events.wait(call.call_id, PbxEventKind.HANGUP, within=timeout + 8)
        assert error_for_unanswered(hangup.cause, hangup.tech_cause) == expected
        assert not events.of(call.call_id, PbxEventKind.ANSWERED)
        if destination == NO_ANSWER:
            assert events.of(call.call_id, PbxEventKind.RINGING)


async def test_duplicate_call_id_is_refused_by_the_pbx(lab):
    async with running_pbx(lab) as (pbx, events):
        call = request(ANSWERS)
        await pbx.originate(call)
        await events.wait(call.call_id, PbxEventKind.ANSWERED)
        with pytest.raises(AriHttpError) as refused:
            await pbx.ari.originate(
                endpoint=f"PJSIP/{ANSWERS}@carrier",
                app_args=f"outbound,{call.call_id}",
                caller_id=call.caller_id,
                channel_id=call.call_id,
                timeout_seconds=10,
            )
        assert refused.value.status == 409
        await pbx.hangup(call.call_id)
        await events.wait(call.call_id, PbxEventKind.HANGUP)


async def test_unknown_trunk_endpoint_is_an_error_not_a_call(lab):
    async with running_pbx(lab) as (pbx, _events):
        call = request(ANSWERS)
        bad = type(call)(call.call_id, call.destination, call.caller_id, "nosuchtrunk", 5)
        with pytest.raises(AriHttpError) as refused:
            await pbx.originate(bad)
        assert refused.value.status == 500


async def test_no_originate_while_the_app_is_not_registered(lab):
    async with running_pbx(lab) as (pbx, _events):
        await pbx.ari.aclose()
        with pytest.raises(PbxUnavailable):
            await pbx.originate(request(ANSWERS))
