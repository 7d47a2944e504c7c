"""What an adapter tells the event sink: each call's events in order, no call behind another's
slow write, an event of no call after the calls' events before it (``pbx/reports.py``)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voicedock.aio import Supervisor
from voicedock.pbx.base import PbxEvent, PbxEventKind
from voicedock.pbx.legs import CallRegistry
from voicedock.pbx.reports import CallReports

pytestmark = pytest.mark.unit

log = logging.getLogger("test.reports")


async def test_a_call_answered_while_another_calls_answer_is_being_stored_is_not_held() -> None:
    stored: list[tuple[str, PbxEventKind]] = []
    writing = asyncio.Event()  # the sink's store write of call-1's answer, held

    async def sink(event: PbxEvent) -> None:
        if event.call_id == "call-1" and event.kind is PbxEventKind.ANSWERED:
            await writing.wait()
        stored.append((event.call_id, event.kind))

    calls = CallRegistry()
    async with Supervisor("adapter", log) as tasks:
        reports = CallReports(calls, log, tasks)
        reports.open(sink)
        for call_id in ("call-1", "call-2"):
            calls.add(call_id, f"chan-{call_id}", "outbound")
        async with asyncio.timeout(1):  # the adapter hands each over and goes on
            await reports.answered("call-1")
            await reports.hangup("call-1", cause=16)
            await reports.answered("call-2")
        async with asyncio.timeout(1):
            while not stored:
                await asyncio.sleep(0)
        assert stored == [("call-2", PbxEventKind.ANSWERED)]  # not behind call-1's write
        restarted = asyncio.create_task(reports.emit(PbxEvent("", PbxEventKind.PBX_RESTARTED)))
        await asyncio.sleep(0.01)
        assert not restarted.done()  # every call's event: after the calls' events before it
        writing.set()
        async with asyncio.timeout(1):
            await restarted
    assert stored == [
        ("call-2", PbxEventKind.ANSWERED),
        ("call-1", PbxEventKind.ANSWERED),  # call-1's in their order
        ("call-1", PbxEventKind.HANGUP),
        ("", PbxEventKind.PBX_RESTARTED),
    ]
