"""The keypad input (``pipeline/dialogue/keypad_input.py``): an open entry comes due after its
timeout, a complete one stops its timer, entries carry wall times."""

from __future__ import annotations

import asyncio

import pytest

from voicedock.pipeline.dialogue.keypad_input import KeypadInput
from voicedock.pipeline.hearing.keypad import KeypadEntry, KeypadPlan

pytestmark = pytest.mark.unit


async def test_an_open_entry_comes_due_after_its_timeout() -> None:
    due: list[float] = []
    keypad = KeypadInput(KeypadPlan(timeout_s=0.5, terminator="#"), lambda: 1000.0, due.append)
    assert keypad.press("1") is None
    assert keypad.press("2") is None  # moves the deadline
    assert keypad.started_at is not None
    await asyncio.sleep(0.7)
    (deadline,) = due  # the first key's timer was replaced by the second's
    keys = keypad.expire(deadline)
    assert keys is not None
    assert keys.digits == "12"
    assert keypad.started_at is None


async def test_a_complete_entry_stops_its_timer_and_has_wall_times() -> None:
    due: list[float] = []
    keypad = KeypadInput(KeypadPlan(timeout_s=0.2, terminator="#"), lambda: 1000.0, due.append)
    keypad.press("4")
    keys = keypad.press("#")
    assert keys is not None
    assert keys.text == "Keypad: 4#"
    await asyncio.sleep(0.3)
    assert due == []  # no timeout for an entry already complete
    entry = keypad.entry(keys)
    assert (entry.role, entry.content) == ("user", "Keypad: 4#")
    assert 999.0 < entry.started_at <= entry.ended_at <= 1000.0


async def test_flush_ends_the_open_entry_and_its_timer() -> None:
    due: list[float] = []
    keypad = KeypadInput(KeypadPlan(timeout_s=0.2), lambda: 50.0, due.append)
    keypad.press("9")
    keys = keypad.flush()
    assert isinstance(keys, KeypadEntry)
    assert keys.digits == "9"
    assert keypad.flush() is None
    await asyncio.sleep(0.3)
    assert due == []


async def test_an_entry_pressed_in_one_instant_never_ends_before_it_starts() -> None:
    """Both wall times come from one reading of the clocks (the event loop's clock moves
    between two readings: a single key's entry then ended before it started)."""
    keypad = KeypadInput(KeypadPlan(timeout_s=0.2), lambda: 1000.0, lambda _: None)
    now = asyncio.get_running_loop().time()
    entry = keypad.entry(KeypadEntry("5", now, now))
    assert entry.started_at == entry.ended_at
