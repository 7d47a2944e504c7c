"""Do-not-call lists (``calls/compliance/do_not_call.py``): the operator's and each
organization's own entries, numbers and ranges (``domain/do_not_call.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class DoNotCallLookups(Protocol):
    """The one question every outbound path asks (a transaction or the store answers it)."""

    async def is_do_not_call(self, organization_id: str, number: str) -> bool:
        """Whether ``number`` (E.164) is listed for the organization: by one of its own entries
        or by the operator's (the number itself, or a range it starts with)."""
        ...


class DoNotCallWrites(DoNotCallLookups, Protocol):
    async def add_do_not_call(
        self, organization_id: str, entries: Sequence[str], now: datetime
    ) -> int:
        """Add entries the organization's list lacks; how many were new."""
        ...

    async def delete_do_not_call(self, organization_id: str, entry: str) -> bool: ...
    async def count_do_not_call(self, organization_id: str) -> int: ...
    async def add_operator_do_not_call(self, entries: Sequence[str], now: datetime) -> int: ...
    async def delete_operator_do_not_call(self, entry: str) -> bool: ...


class DoNotCallReads(DoNotCallLookups, Protocol):
    async def list_do_not_call(self, organization_id: str) -> list[str]: ...
    async def list_operator_do_not_call(self) -> list[str]: ...


__all__ = ["DoNotCallLookups", "DoNotCallReads", "DoNotCallWrites"]
