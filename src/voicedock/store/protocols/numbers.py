"""Trunks (the operator's, mirrored from the configuration) and the organizations' phone
numbers on them, reserved one call at a time within each number's concurrent-call limit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

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


class NumberReads(NumberLookups, Protocol):
    async def list_trunks(self) -> list[Trunk]: ...
    async def get_trunk(self, name: str) -> Trunk | None: ...
    async def find_phone_number_by_e164(self, number: str) -> PhoneNumber | None: ...
    async def count_active_calls(self, number_id: str) -> int: ...


__all__ = ["NumberChoice", "NumberLookups", "NumberReads", "NumberWrites"]
