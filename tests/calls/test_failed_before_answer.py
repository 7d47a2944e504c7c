"""A call that fails before its answer. An inbound caller who left before voicedock answered
(a ``caller-left`` HANGUP, without a cause) was not answered: ``no-answer``, never a PBX error.
A call failed as a PBX error, or for a reason its adapter gave (the step of the answer that
failed), is logged once, as a warning naming the call (its caller's number masked) and what the
PBX said; a call busy or not answered is not."""

from __future__ import annotations

import logging

import pytest

from fakes.calls import place_outbound
from fakes.requests import outbound_request
from fakes.world import ACME, ACME_NUMBERS, DESTINATION, SUPPORT_ID, org_id
from voicedock.calls.engine import CallEngine
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import CallStatus
from voicedock.pbx.base import InboundCall, PbxEvent, PbxEventKind
from voicedock.pbx.causes import CALLER_LEFT

pytestmark = pytest.mark.unit

CALLER = "+31623731537"
GONE = (
    "subscribe of channel 1764178694.42 failed 31.2 s after the caller arrived (18.0 s of it in "
    "the event queue): AriHttpError: ARI POST /applications/a/subscription: 422 Event source "
    "does not exist"
)


async def inbound_call(engine: CallEngine) -> str:
    call_id = await engine.inbound.accept(InboundCall("1764178694.42", CALLER, ACME_NUMBERS[0]))
    assert call_id is not None
    return call_id


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_inbound_caller_gone_before_the_answer_fails_no_answer_logged_once(
    engine: CallEngine, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = await inbound_call(engine)
    hangup = PbxEvent(call_id, PbxEventKind.HANGUP, detail=CALLER_LEFT, reason=GONE)
    with caplog.at_level(logging.WARNING, logger="voicedock"):
        applied = await engine.pbx_events.apply(hangup)
    assert applied.call is not None
    assert (applied.call.status, applied.call.error) == (CallStatus.FAILED, "no-answer")
    [warning] = warnings(caplog)
    assert mask_call_id(call_id) in warning
    assert CALLER not in warning
    assert "subscribe of channel 1764178694.42 failed 31.2 s after the caller arrived" in warning
    assert "422 Event source does not exist" in warning


async def test_a_hangup_of_an_unknown_cause_before_the_answer_is_a_pbx_error_logged_once(
    engine: CallEngine, caplog: pytest.LogCaptureFixture
) -> None:
    call_id = await inbound_call(engine)
    with caplog.at_level(logging.WARNING, logger="voicedock"):
        applied = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.HANGUP, cause=127))
        again = await engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.HANGUP, cause=16))
    assert applied.call is not None
    assert (applied.call.status, applied.call.error) == (CallStatus.FAILED, "pbx-error")
    assert not again.moved
    [warning] = warnings(caplog)
    assert mask_call_id(call_id) in warning
    assert CALLER not in warning
    assert "pbx-error" in warning
    assert "hangup cause 127" in warning


async def test_a_call_busy_before_the_answer_logs_no_warning(
    engine: CallEngine, caplog: pytest.LogCaptureFixture
) -> None:
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    call_id = str((await place_outbound(engine, org_id(ACME), request)).body["call_id"])
    busy = PbxEvent(call_id, PbxEventKind.HANGUP, cause=17, tech_cause=486)
    with caplog.at_level(logging.WARNING, logger="voicedock"):
        applied = await engine.pbx_events.apply(busy)
    assert applied.call is not None
    assert (applied.call.status, applied.call.error) == (CallStatus.FAILED, "busy")
    assert warnings(caplog) == []
