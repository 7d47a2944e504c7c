"""What every automated outbound call passes besides the destination policy
(``calls/policy.py``): the do-not-call list and the calling hours in the callee's local time
(docs/compliance.md). Which calls, inbound too, must disclose the AI is ``ai_disclosure.py``'s."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from voicedock.calls.compliance.calling_hours import (
    OUTSIDE_CALLING_HOURS,
    CallingHours,
    OutsideCallingHours,
)
from voicedock.calls.compliance.do_not_call import DO_NOT_CALL, DoNotCall, DoNotCallRefused
from voicedock.config import ComplianceSettings
from voicedock.domain.records import Organization
from voicedock.store.base import DoNotCallLookups


class ComplianceLookups(DoNotCallLookups, Protocol):
    """What the checks read: the store, or the transaction that claims the call."""

    async def get_organization(self, organization_id: str) -> Organization | None: ...


class Compliance:
    """The operator's compliance settings, applied: one instance per engine."""

    def __init__(self, settings: ComplianceSettings) -> None:
        self.do_not_call = DoNotCall(settings)
        self.hours = CallingHours(settings.calling_hours)

    async def check(
        self, lookups: ComplianceLookups, organization_id: str, number: str, at: datetime
    ) -> None:
        """403 (``DoNotCallRefused``, ``OutsideCallingHours``) unless the organization's
        automated call may reach ``number`` at ``at``."""
        await self.do_not_call.check(lookups, organization_id, number)
        narrower = await _own_hours(lookups, organization_id)
        refused = self.hours.refusal(number, at, narrower)
        if refused is not None:
            raise refused

    async def refusal(
        self, lookups: ComplianceLookups, organization_id: str, number: str, at: datetime
    ) -> str | None:
        """``check``'s reason (``do-not-call``, ``outside-calling-hours``), or ``None``."""
        if await self.do_not_call.listed(lookups, organization_id, number):
            return DO_NOT_CALL
        narrower = await _own_hours(lookups, organization_id)
        if self.hours.refusal(number, at, narrower) is not None:
            return OUTSIDE_CALLING_HOURS
        return None

    async def next_allowed(
        self, lookups: ComplianceLookups, organization_id: str, number: str, now: datetime
    ) -> datetime:
        """When the organization's automated call may reach ``number`` (``now``: at once)."""
        narrower = await _own_hours(lookups, organization_id)
        return self.hours.next_allowed(number, now, narrower)


async def _own_hours(lookups: ComplianceLookups, organization_id: str) -> str | None:
    org = await lookups.get_organization(organization_id)
    return None if org is None else org.calling_hours


__all__ = [
    "DO_NOT_CALL",
    "OUTSIDE_CALLING_HOURS",
    "CallingHours",
    "Compliance",
    "ComplianceLookups",
    "DoNotCall",
    "DoNotCallRefused",
    "OutsideCallingHours",
]
