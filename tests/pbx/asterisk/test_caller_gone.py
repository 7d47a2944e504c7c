"""An inbound caller's channel destroyed before voicedock answered it: the caller left, and its
HANGUP says so (``caller-left``), whatever Q.850 cause Asterisk gives: a cancelled INVITE
(SIP 487) is 127, interworking, which alone would fail the call as a PBX error. The call is not
answered (``no-answer``). After the answer the same event is the caller's hang-up; an outbound
call's is its cause alone."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from voicedock.aio import Supervisor
from voicedock.calls.transitions import apply_pbx_event
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.pbx.asterisk.hangups import AsteriskHangups
from voicedock.pbx.base import PbxEvent
from voicedock.pbx.causes import CALLER_LEFT
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reports import CallReports

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 26, 17, 38, tzinfo=UTC)


async def hangup_of(direction: str, *, answered: bool, cause: int, tech: int | None) -> PbxEvent:
    """The HANGUP reported when the main channel of a call of ``direction`` is destroyed."""
    calls = CallRegistry()
    reported: list[PbxEvent] = []

    async def sink(event: PbxEvent) -> None:
        reported.append(event)

    log = logging.getLogger("test")
    async with Supervisor("reports", log) as tasks:
        reports = CallReports(calls, log, tasks)
        reports.open(sink)
        await _ended(calls, reports, direction, answered=answered, cause=cause, tech=tech)
        await reports.drained()
    [event] = reported
    return event


async def _ended(
    calls: CallRegistry,
    reports: CallReports,
    direction: str,
    *,
    answered: bool,
    cause: int,
    tech: int | None,
) -> None:
    calls.add("call-1", "chan-1", direction)
    if answered:
        calls.mark_answered("call-1")
    spawned: list[Coroutine[Any, Any, None]] = []
    hangups = AsteriskHangups(
        None,  # type: ignore[arg-type]  # no ARI request is made
        calls,
        reports,
        None,  # type: ignore[arg-type]  # the release is spawned, never run here
        spawned.append,  # type: ignore[arg-type]
    )
    await hangups.ended("chan-1", cause, tech)
    for coro in spawned:
        coro.close()


def connecting(direction: Direction) -> Call:
    return Call("call-1", "org", direction, CallStatus.CONNECTING, "+31612345678", "+31850835037")


@pytest.mark.parametrize("tech", [None, 487])
async def test_an_inbound_caller_gone_before_the_answer_left_and_was_not_answered(
    tech: int | None,
) -> None:
    hangup = await hangup_of("inbound", answered=False, cause=127, tech=tech)
    assert (hangup.cause, hangup.tech_cause, hangup.detail) == (127, tech, CALLER_LEFT)
    assert hangup.reason == "the caller hung up before the answer (channel chan-1)"
    failed = apply_pbx_event(connecting(Direction.INBOUND), hangup, T0)
    assert failed is not None
    assert (failed.status, failed.error) == (CallStatus.FAILED, "no-answer")


async def test_an_answered_callers_hang_up_or_an_outbound_calls_end_is_its_cause_alone() -> None:
    answered = await hangup_of("inbound", answered=True, cause=16, tech=None)
    assert (answered.detail, answered.reason) == ("", "")
    outbound = await hangup_of("outbound", answered=False, cause=127, tech=None)
    assert (outbound.detail, outbound.reason) == ("", "")
    failed = apply_pbx_event(connecting(Direction.OUTBOUND), outbound, T0)
    assert failed is not None
    assert failed.error == "pbx-error"
