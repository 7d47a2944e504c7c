"""A live call's event bus (``pipeline/dialogue/events.py``): subscribers told at once,
listeners each in order on their own task, failures contained, everything emitted before the
close delivered, nothing after."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voicedock.pipeline.dialogue.events import (
    AnsweringMachineHeard,
    CallEvent,
    CallEvents,
    ConsentDecided,
    HandedOver,
    MessageAdded,
    TranscriptKept,
)
from voicedock.pipeline.frames import TranscriptEntry

pytestmark = pytest.mark.unit


def kept(text: str) -> TranscriptKept:
    return TranscriptKept(TranscriptEntry("user", text, 1.0, 2.0))


async def test_a_subscriber_is_told_inside_emit_of_its_kind_only() -> None:
    events = CallEvents()
    seen: list[str] = []
    events.subscribe(HandedOver, lambda h: seen.append(h.to))
    events.emit(HandedOver("a", "b"))  # before the bus started: subscribers are told anyway
    events.emit(ConsentDecided({"outcome": "granted"}))
    assert seen == ["b"]
    async with events:
        events.emit(HandedOver("b", "c", "billing"))
        assert seen == ["b", "c"]


async def test_a_listener_awaits_its_kinds_one_at_a_time_in_emitted_order() -> None:
    events = CallEvents()
    got: list[str] = []
    running = 0

    async def slow(event: CallEvent) -> None:
        nonlocal running
        running += 1
        assert running == 1  # never two at once
        await asyncio.sleep(0.01)
        got.append(type(event).__name__)
        running -= 1

    events.listen(slow, TranscriptKept, HandedOver)
    events.emit(kept("before the start"))  # waits for the bus to start
    async with events:
        events.emit(HandedOver("a", "b"))
        events.emit(ConsentDecided({}))  # not a kind it listens to
        events.emit(kept("last"))
        assert got == []  # emit never waits for a listener
    # closed: everything emitted before was delivered, in order
    assert got == ["TranscriptKept", "HandedOver", "TranscriptKept"]


async def test_a_listener_added_while_running_gets_what_comes_after() -> None:
    got: list[str] = []

    async def keep(event: CallEvent) -> None:
        assert isinstance(event, TranscriptKept)
        got.append(event.entry.content)

    async with CallEvents() as events:
        events.emit(kept("unheard"))
        events.listen(keep, TranscriptKept)
        events.emit(kept("heard"))
    assert got == ["heard"]


async def test_a_failing_subscriber_or_listener_is_logged_and_told_the_next_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[str] = []
    told: list[str] = []

    def fussy(event: MessageAdded) -> None:
        told.append(event.entry.content)
        if event.entry.content == "bad":
            raise ValueError("subscriber")

    async def flaky(event: CallEvent) -> None:
        assert isinstance(event, MessageAdded)
        if event.entry.content == "bad":
            raise RuntimeError("listener")
        got.append(event.entry.content)

    caplog.set_level(logging.ERROR, "voicedock.pipeline")
    async with CallEvents() as events:
        events.subscribe(MessageAdded, fussy)
        events.listen(flaky, MessageAdded)
        for text in ("one", "bad", "two"):
            events.emit(MessageAdded(TranscriptEntry("assistant", text, 1.0, 2.0)))
    assert told == ["one", "bad", "two"]
    assert got == ["one", "two"]
    failures = [r.getMessage() for r in caplog.records]
    assert "live call: MessageAdded subscriber failed" in failures
    assert "live call: MessageAdded listener failed" in failures


async def test_aclose_is_idempotent_and_drops_what_is_emitted_after() -> None:
    got: list[CallEvent] = []

    async def keep(event: CallEvent) -> None:
        got.append(event)

    events = CallEvents()
    events.listen(keep, AnsweringMachineHeard)
    await events.start()
    events.emit(AnsweringMachineHeard({"result": "human"}))
    await asyncio.gather(events.aclose(), events.aclose())
    events.emit(AnsweringMachineHeard({"result": "machine"}))
    await events.aclose()
    assert got == [AnsweringMachineHeard({"result": "human"})]


async def test_closed_without_starting_it_delivers_nothing_and_leaves_no_task() -> None:
    events = CallEvents()
    events.listen(lambda _e: asyncio.sleep(0), HandedOver)
    events.emit(HandedOver("a", "b"))
    await events.aclose()
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
