"""Whether a number is on the do-not-call list: the one check of every outbound path
(``POST /calls/outbound``, a scheduled call when it is dialed, a campaign's contact, a
transfer's destination).

The list a call passes is the operator's policy with the organization's additions: the
entries of ``[compliance] do_not_call`` (the file), those of ``voicedock dnc`` (the operator's
table) and the organization's own (``POST /do-not-call``). An organization's entries never
touch another organization's calls. Entries are numbers or ranges (``domain/do_not_call.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from voicedock.calls.policy import DestinationRefused
from voicedock.config import ComplianceSettings
from voicedock.domain.campaigns import DO_NOT_CALL
from voicedock.domain.do_not_call import covering
from voicedock.errors import Conflict, Forbidden
from voicedock.store.base import DoNotCallLookups, Store

DO_NOT_CALL_ERROR = "Do not call"
LIST_FULL_ERROR = "Do-not-call list full"


class DoNotCallRefused(DestinationRefused, error=DO_NOT_CALL_ERROR):
    """403: the number is on the do-not-call list (``reason``: ``do-not-call``, in the body
    too)."""

    def __init__(self) -> None:
        Forbidden.__init__(
            self, "the number is on the do-not-call list", extra={"reason": DO_NOT_CALL}
        )
        self.reason = DO_NOT_CALL


class DoNotCall:
    """The do-not-call list as the operator configured it, and the store's entries."""

    def __init__(self, settings: ComplianceSettings) -> None:
        self._configured = frozenset(settings.do_not_call)

    async def listed(self, lookups: DoNotCallLookups, organization_id: str, number: str) -> bool:
        """Whether ``number`` (E.164) must not be called by the organization: listed by the
        operator (the file or ``voicedock dnc``) or by the organization itself."""
        if not self._configured.isdisjoint(covering(number)):
            return True
        return await lookups.is_do_not_call(organization_id, number)

    async def check(self, lookups: DoNotCallLookups, organization_id: str, number: str) -> None:
        """``DoNotCallRefused`` when the number is listed."""
        if await self.listed(lookups, organization_id, number):
            raise DoNotCallRefused


async def add_entries(
    store: Store, organization_id: str, entries: Sequence[str], most: int, now: datetime
) -> int:
    """Add ``entries`` (already ``entry_of``'s) to the organization's own list; how many were
    new. 409 when the list would hold more than ``most`` entries (nothing added)."""
    async with store.transaction() as tx:
        await tx.lock_organization(organization_id)  # concurrent imports count one after another
        held = await tx.count_do_not_call(organization_id)
        if held + len(entries) > most:
            raise Conflict(
                f"the do-not-call list holds at most {most} entries ({held} now); remove some "
                "or ask the operator (compliance.max_organization_entries)",
                error=LIST_FULL_ERROR,
            )
        return await tx.add_do_not_call(organization_id, entries, now)


__all__ = [
    "DO_NOT_CALL",
    "DO_NOT_CALL_ERROR",
    "LIST_FULL_ERROR",
    "DoNotCall",
    "DoNotCallRefused",
    "add_entries",
]
