"""What every automated outbound call passes besides the destination policy
(``calls/policy.py``): the do-not-call list and the calling hours in the callee's local time
(docs/compliance.md)."""

from __future__ import annotations

from datetime import datetime

from voicedock.calls.compliance.calling_hours import (
    OUTSIDE_CALLING_HOURS,
    CallingHours,
    OutsideCallingHours,
)
from voicedock.calls.compliance.do_not_call import DO_NOT_CALL, DoNotCall, DoNotCallRefused
from voicedock.config import ComplianceSettings
from voicedock.store.base import DoNotCallLookups


class Compliance:
    """The operator's compliance settings, applied: one instance per engine."""

    def __init__(self, settings: ComplianceSettings) -> None:
        self.do_not_call = DoNotCall(settings)
        self.hours = CallingHours(settings.calling_hours)

    async def check(
        self, lookups: DoNotCallLookups, organization_id: str, number: str, at: datetime
    ) -> None:
        """403 (``DoNotCallRefused``, ``OutsideCallingHours``) unless the organization's
        automated call may reach ``number`` at ``at``."""
        await self.do_not_call.check(lookups, organization_id, number)
        self.hours.check(number, at)

    async def refusal(
        self, lookups: DoNotCallLookups, organization_id: str, number: str, at: datetime
    ) -> str | None:
        """``check``'s reason (``do-not-call``, ``outside-calling-hours``), or ``None``."""
        if await self.do_not_call.listed(lookups, organization_id, number):
            return DO_NOT_CALL
        if self.hours.refusal(number, at) is not None:
            return OUTSIDE_CALLING_HOURS
        return None


__all__ = [
    "DO_NOT_CALL",
    "OUTSIDE_CALLING_HOURS",
    "CallingHours",
    "Compliance",
    "DoNotCall",
    "DoNotCallRefused",
    "OutsideCallingHours",
]
