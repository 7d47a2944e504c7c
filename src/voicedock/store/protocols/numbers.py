"""Trunks (the operator's, mirrored from the configuration) and the organizations' phone
numbers on them, reserved one call at a time within each number's concurrent-call limit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from voicedock.domain.number_health import NumberOutcomes
from voicedock.domain.records import PhoneNumber, Trunk


@dataclass(frozen=True, slots=True)
class NumberChoice:
    """Which of an organization's numbers a new outbound call may call from: ``number_id``
    alone when given, else one of ``among`` (empty: any of them); ``trunks``: only numbers on
    these trunks (``None``: on any)."""

    organization_id: str
    number_id: str | None = None
    among: Sequence[str] = ()
    trunks: Collection[str] | None = None
    # The pool's preferences (``[number_health]``): numbers not flagged unhealthy first; then
    # those whose number starts with ``local_prefix`` (the callee's country and area code).
    # A resting number is never taken from the pool (only named by ``number_id``).
    prefer_healthy: bool = False
    local_prefix: str | None = None


class NumberLookups(Protocol):
    """An organization's phone numbers, read by the store or in a transaction (whose task must
    not read on another connection while it holds one open)."""

    async def get_phone_number(
        self, organization_id: str | None, number_id: str
    ) -> PhoneNumber | None: ...
    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]: ...


class NumberWrites(NumberLookups, Protocol):
    # configuration-owned trunks are mirrored into the store at start-up
    async def upsert_trunk(self, trunk: Trunk) -> None: ...

    async def insert_phone_number(self, number: PhoneNumber) -> None: ...
    async def update_phone_number(self, number: PhoneNumber) -> None: ...
    async def delete_phone_number(self, organization_id: str, number_id: str) -> bool: ...

    async def reserve_phone_number(self, choice: NumberChoice, now: datetime) -> PhoneNumber | None:
        """Lock and return a caller number for a new outbound call.

        With ``choice.number_id``: that number if it belongs to the organization and is under
        its concurrent-call limit. Without: the least recently used of the chosen numbers that
        is under its limit. Marks it used at ``now``. ``None`` when nothing qualifies (the
        caller tells "not found" from "busy" with ``get_phone_number``).
        """
        ...

    async def number_outcomes(
        self, number_id: str, since: datetime, short_call_seconds: int, unanswered: Sequence[str]
    ) -> NumberOutcomes:
        """What became of the outbound calls made from ``number_id`` since ``since`` that have
        ended (test calls apart), answered or failed with an error of ``unanswered`` (what the
        callee's side decided; not a call cancelled or failed on our side): their count,
        answered, answered and shorter than ``short_call_seconds``, ended ``voicemail``."""
        ...

    async def set_number_health(self, number: PhoneNumber) -> None:
        """Store ``number.health`` (the outcomes of its calls as of its last call's end)."""
        ...

    async def set_number_rest(self, number: PhoneNumber) -> None:
        """Store ``number``'s flag, rest and ``health_since`` as they are on it."""
        ...

    async def change_number_flag(self, number: PhoneNumber, was: datetime | None) -> bool:
        """Store ``number``'s flag, rest and ``health_since`` if its flag is still ``was``
        (``flagged_at``; None: not flagged); whether it was (so one of two calls ending at
        once on two nodes announces the change)."""
        ...


class NumberReads(NumberLookups, Protocol):
    async def list_trunks(self) -> list[Trunk]: ...
    async def get_trunk(self, name: str) -> Trunk | None: ...
    async def find_phone_number_by_e164(self, number: str) -> PhoneNumber | None: ...
    async def count_active_calls(self, number_id: str) -> int: ...


__all__ = ["NumberChoice", "NumberLookups", "NumberReads", "NumberWrites"]
