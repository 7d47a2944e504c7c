"""Secure keypad entry: the digits of one ``collect_secure_digits`` tool call, collected by
voicedock alone (a card number, a PIN) and never handed to the dialogue.

The entry opens when the tool is called and ends when the caller presses the terminator (not
part of the digits), when it holds ``max_digits`` digits, or ``timeout_s`` after the last key
(or after ``wait_from``, the prompt's end, when no key came yet); the owner may also end it
(``close``: the call is over). It is complete when it ended by the terminator or by its length
with at least ``min_digits`` digits. Only ``0``-``9`` are digits; other keys are ignored. The
collector is pure: the owner gives the time of every press and asks when ``deadline`` passes.
The digits never appear in a repr, so a log line that names an entry does not carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

EndedBy = Literal["terminator", "length", "timeout", "closed"]
TERMINATORS = ("#", "*")
MAX_SECURE_DIGITS = 32
DEFAULT_MIN_DIGITS = 1
DEFAULT_MAX_DIGITS = 16
DEFAULT_TERMINATOR = "#"
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SecureDigitsPlan:
    """How an entry ends: ``terminator`` (None: none), ``max_digits``, or ``timeout_s`` with
    no key; complete with ``min_digits`` at least."""

    min_digits: int = DEFAULT_MIN_DIGITS
    max_digits: int = DEFAULT_MAX_DIGITS
    terminator: str | None = DEFAULT_TERMINATOR
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits <= MAX_SECURE_DIGITS:
            raise ValueError(
                f"min_digits and max_digits must be in order, 1 to {MAX_SECURE_DIGITS}"
            )
        if self.terminator is not None and self.terminator not in TERMINATORS:
            raise ValueError(f"the terminator must be one of {', '.join(TERMINATORS)}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


@dataclass(frozen=True, slots=True)
class SecureDigits:
    """What one entry collected, and how it ended (``digits`` kept out of its repr)."""

    digits: str = field(repr=False)
    ended_by: EndedBy
    complete: bool

    @property
    def count(self) -> int:
        return len(self.digits)


class SecureDigitsCollector:
    """One entry: ``press`` each key; the entry comes back once it has ended (then never
    again: later keys and deadlines are ignored)."""

    def __init__(self, plan: SecureDigitsPlan, now: float) -> None:
        self.plan = plan
        self._digits = ""
        self._deadline = now + plan.timeout_s
        self._ended: SecureDigits | None = None

    @property
    def ended(self) -> bool:
        return self._ended is not None

    @property
    def deadline(self) -> float | None:
        """When the entry times out (None: it has ended)."""
        return None if self._ended is not None else self._deadline

    def wait_from(self, now: float) -> None:
        """The caller is asked now (the prompt was spoken): no key yet times out
        ``timeout_s`` from ``now``, not from the entry's start."""
        if not self._digits:
            self._deadline = max(self._deadline, now + self.plan.timeout_s)

    def press(self, key: str, now: float) -> SecureDigits | None:
        """A key pressed at ``now``; the entry when this key ends it."""
        if self._ended is not None or len(key) != 1:
            return None
        if self.plan.terminator is not None and key == self.plan.terminator:
            return self._end("terminator")
        if not key.isdigit() or not key.isascii():
            return None
        self._digits += key
        self._deadline = now + self.plan.timeout_s
        if len(self._digits) >= self.plan.max_digits:
            return self._end("length")
        return None

    def expire(self, now: float) -> SecureDigits | None:
        """The entry, if its deadline has passed at ``now``."""
        if self._ended is not None or now < self._deadline:
            return None
        return self._end("timeout")

    def close(self) -> SecureDigits:
        """End the entry now (the call is over); what it holds is incomplete."""
        return self._ended or self._end("closed")

    def _end(self, ended_by: EndedBy) -> SecureDigits:
        complete = ended_by in ("terminator", "length") and (
            self.plan.min_digits <= len(self._digits) <= self.plan.max_digits
        )
        self._ended = SecureDigits(self._digits, ended_by, complete)
        self._digits = ""
        return self._ended
