"""What a user expects of a call before it is answered: end-call cancels it, it rings at most
its ring timeout, and a party that answers a call nobody wants any more is hung up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from fakes.calls import calls_of, place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.requests import outbound_request
from fakes.world import ACME, DESTINATION, SUPPORT_ID, org_id
from voicedock.calls.control import EndCall, Say
from voicedock.calls.engine import CallEngine
from voicedock.calls.errors import CallNotActive, PbxCommandFailed
from voicedock.config import Settings
from voicedock.domain.records import CallStatus
from voicedock.errors import PbxError
from voicedock.pbx.base import OriginateRequest, PbxEventKind

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)


async def place(engine: CallEngine, **extra: object) -> str:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID, **extra}
    result = await place_outbound(engine, ACME_ID, outbound_request(body))
    call_id = result.body["call_id"]
    assert isinstance(call_id, str)
    return call_id


async def status_moves(store: MemoryStore, call_id: str) -> list[str]:
    return [e.data["to"] for e in await store.list_events(call_id) if e.type == "status"]


async def test_end_call_while_ringing_cancels_the_call(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    await pbx.emit(call_id, PbxEventKind.RINGING)
    await engine.control.run(ACME_ID, call_id, EndCall())
    assert pbx.hangups == [(call_id, "normal")]
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.ENDED
    assert call.end_reason == "cancelled"
    assert call.error is None
    assert call.started_at is None
    assert call.ended_at is not None
    await pbx.hang_up_remote(call_id, 16)  # the HANGUP our hang-up caused changes nothing
    assert await status_moves(store, call_id) == ["connecting", "ended"]
    (control,) = [e.data for e in await store.list_events(call_id) if e.type == "control"]
    assert control == {"type": "end-call", "delivered_to": "pbx", "result": "cancelled"}


async def test_hangup_report_before_the_cancel_returns_still_says_cancelled(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    hang_up = pbx.hangup

    async def reporting_hangup(cid: str, reason: str = "normal") -> None:
        await hang_up(cid, reason)
        await pbx.hang_up_remote(cid, 16)  # the PBX reports before the DELETE returns

    pbx.hangup = reporting_hangup  # type: ignore[method-assign]
    await engine.control.run(ACME_ID, call_id, EndCall())
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert (call.status, call.end_reason, call.error) == (CallStatus.ENDED, "cancelled", None)
    assert await status_moves(store, call_id) == ["connecting", "ended"]


async def test_answer_crossing_the_cancel_is_hung_up_and_the_call_ends(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    hang_up = pbx.hangup

    answers = [call_id]

    async def answered_meanwhile(cid: str, reason: str = "normal") -> None:
        if answers:
            await pbx.answer(answers.pop())  # the party picks up while the cancel is on its way
        await hang_up(cid, reason)

    pbx.hangup = answered_meanwhile  # type: ignore[method-assign]
    await engine.control.run(ACME_ID, call_id, EndCall())
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert (call.status, call.end_reason, call.started_at) == (CallStatus.ENDED, "cancelled", None)
    assert await status_moves(store, call_id) == ["connecting", "ended"]  # never in-progress
    assert len(pbx.hangups) == 2  # the cancel's, and the one for the answer


async def test_answer_after_the_cancel_is_hung_up(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    await engine.control.run(ACME_ID, call_id, EndCall())
    await pbx.answer(call_id)  # a channel the hang-up did not reach yet, answered later
    assert pbx.hangups == [(call_id, "normal"), (call_id, "normal")]
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.ENDED


async def test_cancel_the_pbx_refuses_is_503_and_ends_the_call_when_the_pbx_reports(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    pbx.fail_commands = PbxError("ARI down")
    with pytest.raises(PbxCommandFailed):
        await engine.control.run(ACME_ID, call_id, EndCall())
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert call.status is CallStatus.CONNECTING  # still ringing as far as anyone knows
    pbx.fail_commands = None
    await pbx.answer(call_id)  # answered later: the cancel stands, nobody is left on the line
    assert pbx.hangups == [(call_id, "normal")]
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "cancelled")


async def test_cancel_waits_for_an_originate_in_flight(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    accepted = asyncio.Event()
    originate = pbx.originate

    async def slow_originate(request: OriginateRequest) -> None:
        await accepted.wait()
        await originate(request)

    pbx.originate = slow_originate  # type: ignore[method-assign]
    placing = asyncio.create_task(place(engine))
    while not (await store.list_active_calls()):
        await asyncio.sleep(0)
    (call,) = await store.list_active_calls()
    cancelling = asyncio.create_task(engine.control.run(ACME_ID, call.id, EndCall()))
    await asyncio.sleep(0.05)
    assert pbx.hangups == []  # not before the PBX has the call
    accepted.set()
    await placing
    await cancelling
    assert pbx.hangups == [(call.id, "normal")]
    ended = await store.get_call(ACME_ID, call.id)
    assert ended is not None
    assert (ended.status, ended.end_reason) == (CallStatus.ENDED, "cancelled")


async def test_other_commands_on_a_ringing_call_are_still_409(
    engine: CallEngine, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    with pytest.raises(CallNotActive, match="only end-call"):
        await engine.control.run(ACME_ID, call_id, Say("hello"))
    assert pbx.hangups == []


async def test_ring_timeout_reaches_the_originate(engine: CallEngine, pbx: FakePbx) -> None:
    await place(engine)
    await place(engine, ring_timeout_seconds=7)
    assert [r.timeout_seconds for r in pbx.originated] == [30, 7]


@pytest.fixture
async def watched(
    store: MemoryStore, pbx: FakePbx, settings: Settings
) -> AsyncIterator[CallEngine]:
    engine, runner = calls_of(store, pbx, settings, ring_grace=-4.8)  # 5 s ring timeout → 0.2 s
    async with runner:
        await pbx.start(runner.events.handle_pbx_event)
        watcher = asyncio.create_task(engine.ring_timeouts.run())
        try:
            yield engine
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


async def test_a_call_ringing_past_its_timeout_fails_no_answer_and_is_hung_up(
    watched: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    ringing = await place(watched, ring_timeout_seconds=5)
    answered = await place(watched, ring_timeout_seconds=5)
    await pbx.answer(answered)
    await asyncio.sleep(0.5)
    call = await store.get_call(ACME_ID, ringing)
    assert call is not None
    assert (call.status, call.error) == (CallStatus.FAILED, "no-answer")
    assert pbx.hangups == [(ringing, "normal")]
    other = await store.get_call(ACME_ID, answered)
    assert other is not None
    assert other.status is CallStatus.IN_PROGRESS
    await pbx.answer(ringing)  # answering too late: hung up, the call stays failed
    assert pbx.hangups == [(ringing, "normal"), (ringing, "normal")]


async def test_reconcile_settles_a_requested_cancel_as_cancelled(
    engine: CallEngine, store: MemoryStore, pbx: FakePbx
) -> None:
    call_id = await place(engine)
    pbx.fail_commands = PbxError("ARI down")
    with pytest.raises(PbxCommandFailed):
        await engine.control.run(ACME_ID, call_id, EndCall())
    pbx.live.discard(call_id)  # the PBX dropped the leg while we were disconnected
    assert await engine.pbx_events.reconcile() == 1
    call = await store.get_call(ACME_ID, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "cancelled")
