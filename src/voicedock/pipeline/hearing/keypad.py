"""Caller keypad input: DTMF digits collected into one entry, ``"Keypad: 1234#"``.

A plan may be turned off (``enabled``): the dialogue then ignores every key (no barge-in, no
entry, nothing for the model), for a line whose keys are not the caller's (a PBX menu in front
sending stray DTMF).

An entry starts with the first digit and ends when the caller presses the plan's terminator
(kept in the entry), when it holds ``max_digits`` digits, or ``timeout_s`` after the last
digit with no other one (the owner asks when its ``deadline`` passes). The owner may also end
it early (``flush``): the caller's spoken turn ended, the call is over. The collector is pure:
the owner gives the time of every press and decides what the entry becomes (a user turn).
"""

from __future__ import annotations

from dataclasses import dataclass

# The plan's defaults: the API's ``keypad`` object (domain/assistant_config.py).
from voicedock.domain.assistant_config import (
    KEYPAD_DEFAULT_MAX_DIGITS,
    KEYPAD_DEFAULT_TERMINATOR,
    KEYPAD_DEFAULT_TIMEOUT_S,
)

DIGITS = frozenset("0123456789*#ABCD")
PREFIX = "Keypad: "


@dataclass(slots=True, frozen=True)
class KeypadPlan:
    """When an entry ends: ``terminator`` pressed (None: no terminator), ``max_digits``
    collected, or ``timeout_s`` after the last digit; ``enabled`` False: keys are ignored."""

    timeout_s: float = KEYPAD_DEFAULT_TIMEOUT_S
    terminator: str | None = KEYPAD_DEFAULT_TERMINATOR
    max_digits: int = KEYPAD_DEFAULT_MAX_DIGITS
    enabled: bool = True


@dataclass(slots=True, frozen=True)
class KeypadEntry:
    """What the caller pressed, from the first digit (``started_at``) to the end of the
    entry (``ended_at``), in the owner's time base."""

    digits: str
    started_at: float
    ended_at: float

    @property
    def text(self) -> str:
        """The user turn the model and the transcript see."""
        return f"{PREFIX}{self.digits}"


class KeypadCollector:
    """One call's keypad: ``press`` each digit; an entry comes back when it is complete."""

    def __init__(self, plan: KeypadPlan | None = None) -> None:
        self.plan = plan or KeypadPlan()
        self._digits = ""
        self._started_at: float | None = None
        self._last_at = 0.0

    @property
    def collecting(self) -> bool:
        return self._started_at is not None

    @property
    def started_at(self) -> float | None:
        """When the open entry's first digit was pressed (None: no entry open)."""
        return self._started_at

    @property
    def deadline(self) -> float | None:
        """When the open entry times out: ``timeout_s`` after its last digit."""
        return None if self._started_at is None else self._last_at + self.plan.timeout_s

    def press(self, digit: str, now: float) -> KeypadEntry | None:
        """A digit pressed at ``now``; the entry when this digit completes it (the
        terminator, or the ``max_digits``-th digit). Anything but a DTMF digit is ignored."""
        if len(digit) != 1 or digit.upper() not in DIGITS:
            return None
        if self._started_at is None:
            self._started_at = now
        self._digits += digit.upper()
        self._last_at = now
        terminated = self.plan.terminator is not None and digit == self.plan.terminator
        if terminated or len(self._digits) >= self.plan.max_digits:
            return self.flush(now)
        return None

    def expire(self, now: float) -> KeypadEntry | None:
        """The open entry if its deadline has passed at ``now``."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return None
        return self.flush(now)

    def flush(self, now: float) -> KeypadEntry | None:
        """End the open entry now (None when there is none)."""
        if self._started_at is None:
            return None
        entry = KeypadEntry(self._digits, self._started_at, now)
        self._digits, self._started_at = "", None
        return entry
