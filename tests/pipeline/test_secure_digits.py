"""The secure keypad entry's state machine (``pipeline/hearing/secure_digits.py``): how an entry
ends, when it is complete, and that its digits never show in a repr."""

from __future__ import annotations

import pytest

from voicedock.pipeline.hearing.secure_digits import SecureDigitsCollector, SecureDigitsPlan

pytestmark = pytest.mark.unit

CARD = "4929386172530418"


def press_all(collector: SecureDigitsCollector, keys: str, start: float = 0.0) -> list[object]:
    return [collector.press(key, start + 0.25 * i) for i, key in enumerate(keys)]


def test_sixteen_digits_and_the_terminator_end_a_complete_entry() -> None:
    collector = SecureDigitsCollector(SecureDigitsPlan(max_digits=19), now=0.0)
    results = press_all(collector, CARD + "#")
    assert results[:-1] == [None] * 16
    entry = results[-1]
    assert entry is not None
    assert (entry.digits, entry.ended_by, entry.complete) == (CARD, "terminator", True)
    assert collector.ended
    assert collector.deadline is None
    assert collector.press("5", 10.0) is None  # once ended, later keys are nobody's


def test_the_length_ends_an_entry_without_a_terminator() -> None:
    plan = SecureDigitsPlan(min_digits=4, max_digits=4, terminator=None)
    collector = SecureDigitsCollector(plan, now=0.0)
    assert press_all(collector, "123")[-1] is None
    entry = collector.press("4", 1.0)
    assert entry is not None
    assert (entry.digits, entry.ended_by, entry.complete) == (
        "1234",
        "length",
        True,
    )


def test_too_few_digits_before_the_terminator_are_not_complete() -> None:
    collector = SecureDigitsCollector(SecureDigitsPlan(min_digits=15, max_digits=19), now=0.0)
    entry = press_all(collector, "1234#")[-1]
    assert entry is not None
    assert (entry.ended_by, entry.complete, entry.count) == ("terminator", False, 4)


def test_the_timeout_runs_from_the_last_key_and_from_the_prompt_end() -> None:
    plan = SecureDigitsPlan(timeout_s=5.0)
    collector = SecureDigitsCollector(plan, now=0.0)
    collector.wait_from(3.0)  # the prompt took 3 s: the caller has 5 s from then
    assert collector.deadline == 8.0
    assert collector.expire(7.9) is None
    collector.press("1", 7.0)
    assert collector.deadline == 12.0
    entry = collector.expire(12.0)
    assert entry is not None
    assert (entry.ended_by, entry.complete, entry.count) == (
        "timeout",
        False,
        1,
    )


def test_nothing_entered_times_out_empty() -> None:
    collector = SecureDigitsCollector(SecureDigitsPlan(timeout_s=2.0), now=0.0)
    entry = collector.expire(2.0)
    assert entry is not None
    assert (entry.digits, entry.ended_by, entry.complete) == (
        "",
        "timeout",
        False,
    )


def test_keys_other_than_digits_are_ignored_and_close_ends_incomplete() -> None:
    collector = SecureDigitsCollector(SecureDigitsPlan(terminator="#"), now=0.0)
    for key in ("*", "A", "12", "٣"):
        assert collector.press(key, 0.1) is None
    collector.press("7", 0.2)
    entry = collector.close()
    assert (entry.digits, entry.ended_by, entry.complete) == ("7", "closed", False)
    assert collector.close() is entry


def test_the_digits_are_not_in_the_repr() -> None:
    collector = SecureDigitsCollector(SecureDigitsPlan(), now=0.0)
    entry = press_all(collector, CARD)[-1]
    assert entry is not None
    assert entry.digits == CARD
    assert CARD not in repr(entry)
    assert CARD[:6] not in str(entry)


@pytest.mark.parametrize(
    ("low", "high", "terminator", "timeout"),
    [(0, 4, "#", 5.0), (5, 4, "#", 5.0), (1, 33, "#", 5.0), (1, 4, "5", 5.0), (1, 4, "#", 0.0)],
)
def test_a_plan_out_of_bounds_is_refused(
    low: int, high: int, terminator: str, timeout: float
) -> None:
    with pytest.raises(ValueError, match="must"):
        SecureDigitsPlan(low, high, terminator, timeout)
