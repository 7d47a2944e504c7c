from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from fakes.calls import calls_of, place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import FakePbx
from fakes.requests import outbound_request
from fakes.turns import Turn
from fakes.world import ACME, DESTINATION, SUPPORT_ID, org_id
from voicedock.calls.engine import CallEngine
from voicedock.calls.live.record import LiveRecord
from voicedock.config import Settings
from voicedock.domain.records import Call, CallEvent, CallMessage
from voicedock.store.base import Transaction

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.reports: list[tuple[Call, list[str]]] = []

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        assert event.seq > 0  # the stored event, not the draft
        self.events.append((event.type, str(event.data.get("to", event.data.get("role", "")))))

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        self.reports.append((call, [m.content for m in messages]))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def engine(
    store: MemoryStore, pbx: FakePbx, settings: Settings, recorder: Recorder
) -> AsyncIterator[CallEngine]:
    """The engine of ``conftest``, telling ``recorder`` of every event and report."""
    engine, runner = calls_of(store, pbx, settings, observers=[recorder])
    async with runner:
        await pbx.start(runner.events.handle_pbx_event)
        yield engine


async def placed(engine: CallEngine) -> str:
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    result = await place_outbound(engine, org_id(ACME), request)
    call_id = result.body["call_id"]
    assert isinstance(call_id, str)
    return call_id


RECORD = LiveRecord(
    end_reason="silence-timeout",
    transcript=[Turn("assistant", "Hello", 1.0, 2.0), Turn("user", "Hi there", 3.0, 4.0)],
    latency=[{"endpointing_ms": 700.0}],
    summary="Greeted.",
    analysis_result={"summary": "Greeted.", "sentiment": 6, "method": "heuristic"},
)


async def test_every_event_and_one_report_without_live_conversation(
    engine: CallEngine, pbx: FakePbx, recorder: Recorder
) -> None:
    call_id = await placed(engine)
    await pbx.answer(call_id)
    await pbx.hang_up_remote(call_id, 16)
    await pbx.hang_up_remote(call_id, 16)
    assert recorder.events == [
        ("status", "connecting"),
        ("status", "in-progress"),
        ("status", "ended"),
    ]
    assert len(recorder.reports) == 1
    assert recorder.reports[0][0].status == "ended"


async def test_report_waits_for_live_record_that_arrives_after_hangup(
    engine: CallEngine, pbx: FakePbx, store: MemoryStore, recorder: Recorder
) -> None:
    call_id = await placed(engine)
    await pbx.answer(call_id)
    engine.records.attach(call_id, object())  # type: ignore[arg-type]
    await engine.records.set_end_reason(call_id, "silence-timeout")
    await pbx.hang_up_remote(call_id, 16)
    assert recorder.reports == []
    await engine.records.store_live_record(call_id, RECORD)
    [(call, contents)] = recorder.reports
    assert call.end_reason == "silence-timeout"
    assert call.summary == "Greeted."
    assert contents == ["Hello", "Hi there"]
    stored = await store.get_call(None, call_id)
    assert stored is not None
    assert stored.latency == [{"endpointing_ms": 700.0}]
    assert [m.role for m in await store.list_messages(call_id)] == ["assistant", "user"]


async def test_record_before_hangup_reports_at_the_terminal_transition(
    engine: CallEngine, pbx: FakePbx, store: MemoryStore, recorder: Recorder
) -> None:
    call_id = await placed(engine)
    await pbx.answer(call_id)
    engine.records.attach(call_id, object())  # type: ignore[arg-type]
    # Stored as it happened (GET shows it during the call); the record does not repeat it.
    await engine.records.store_transcript_turn(call_id, Turn("user", "Hi there", 3.0, 4.0))
    assert [m.content for m in await store.list_messages(call_id)] == ["Hi there"]
    await engine.records.store_live_record(call_id, RECORD)
    assert recorder.reports == []
    await pbx.hang_up_remote(call_id, 16)
    [(call, contents)] = recorder.reports
    assert call.status == "ended"
    assert call.end_reason == "remote-hangup"
    assert contents == ["Hello", "Hi there"]
    assert ("transcript", "user") in recorder.events
