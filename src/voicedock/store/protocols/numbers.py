"""Trunks (the operator's, mirrored from the configuration) and the organizations' phone
numbers on them, reserved one call at a time within each number's concurrent-call limit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from voicedock.domain.records import PhoneNumber, Trunk


class NumberWrites(Protocol):
    # configuration-owned trunks are mirrored into the store at start-up
    async def upsert_trunk(self, trunk: Trunk) -> None: ...

    async def insert_phone_number(self, number: PhoneNumber) -> None: ...
    async def update_phone_number(self, number: PhoneNumber) -> None: ...
    async def delete_phone_number(self, organization_id: str, number_id: str) -> bool: ...

    async def reserve_phone_number(
        self,
        organization_id: str,
        number_id: str | None,
        now: datetime,
        among: Sequence[str] = (),
        trunks: Collection[str] | None = None,
    ) -> PhoneNumber | None:
        """Lock and return a caller number for a new outbound call.

        ``among`` (without ``number_id``): only these of the organization's numbers.
        ``trunks``: only numbers on these trunks (``None``: on any).

        With ``number_id``: that number if it belongs to the organization and is under its
        concurrent-call limit. Without: the organization's least recently used number that is
        under its limit. Marks it used at ``now``. ``None`` when nothing qualifies (the caller
        tells "not found" from "busy" with ``get_phone_number``).
        """
        ...


class NumberReads(Protocol):
    async def list_trunks(self) -> list[Trunk]: ...
    async def get_trunk(self, name: str) -> Trunk | None: ...

    async def get_phone_number(
        self, organization_id: str | None, number_id: str
    ) -> PhoneNumber | None: ...
    async def find_phone_number_by_e164(self, number: str) -> PhoneNumber | None: ...
    async def list_phone_numbers(self, organization_id: str) -> list[PhoneNumber]: ...
    async def count_active_calls(self, number_id: str) -> int: ...


__all__ = ["NumberReads", "NumberWrites"]
