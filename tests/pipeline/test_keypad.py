"""The keypad collector on explicit times: an entry ends on its terminator, on max_digits, or
``timeout_s`` after its last digit (each digit moves the deadline); ``flush`` ends it early."""

from __future__ import annotations

import pytest

from voicedock.pipeline.hearing.keypad import KeypadCollector, KeypadEntry, KeypadPlan

pytestmark = pytest.mark.unit


def press_all(
    collector: KeypadCollector, keys: str, start: float = 10.0, step: float = 0.5
) -> list[KeypadEntry]:
    """Press ``keys`` ``step`` seconds apart; the entries that came back."""
    done: list[KeypadEntry] = []
    for i, key in enumerate(keys):
        if (entry := collector.press(key, start + i * step)) is not None:
            done.append(entry)
    return done


def test_the_terminator_ends_the_entry_and_is_kept() -> None:
    keypad = KeypadCollector(KeypadPlan(timeout_s=3, terminator="#", max_digits=16))
    (entry,) = press_all(keypad, "1234#")
    assert entry == KeypadEntry("1234#", 10.0, 12.0)
    assert entry.text == "Keypad: 1234#"
    assert not keypad.collecting
    assert keypad.deadline is None


def test_max_digits_ends_the_entry_with_its_last_digit() -> None:
    keypad = KeypadCollector(KeypadPlan(terminator="#", max_digits=4))
    entries = press_all(keypad, "123456")
    assert [e.digits for e in entries] == ["1234"]
    assert keypad.collecting  # 5 and 6 began the next entry
    assert keypad.flush(20.0) == KeypadEntry("56", 12.0, 20.0)


def test_the_timeout_counts_from_the_last_digit() -> None:
    keypad = KeypadCollector(KeypadPlan(timeout_s=2, terminator="#"))
    assert press_all(keypad, "12") == []
    assert keypad.deadline == 12.5  # the second digit at 10.5, plus 2 s
    assert keypad.expire(12.4) is None  # not yet: nothing lost, nothing ended
    keypad.press("3", 12.4)  # a later digit moves the deadline
    assert keypad.expire(12.5) is None
    assert keypad.deadline == 14.4
    assert keypad.expire(14.4) == KeypadEntry("123", 10.0, 14.4)
    assert keypad.expire(99.0) is None  # once


def test_without_a_terminator_hash_is_a_digit_like_any_other() -> None:
    keypad = KeypadCollector(KeypadPlan(terminator=None, max_digits=6))
    assert press_all(keypad, "12#4") == []
    assert keypad.flush(30.0) == KeypadEntry("12#4", 10.0, 30.0)
    star = KeypadCollector(KeypadPlan(terminator="*"))
    assert [e.digits for e in press_all(star, "9#*")] == ["9#*"]


def test_only_dtmf_digits_count_and_letters_are_upper_case() -> None:
    keypad = KeypadCollector()
    assert keypad.press("x", 1.0) is None
    assert keypad.press("", 1.0) is None
    assert not keypad.collecting
    keypad.press("a", 2.0)
    assert keypad.flush(3.0) == KeypadEntry("A", 2.0, 3.0)
    assert keypad.flush(4.0) is None  # nothing open


def test_the_defaults() -> None:
    plan = KeypadCollector().plan
    assert (plan.timeout_s, plan.terminator, plan.max_digits) == (3.0, "#", 16)
