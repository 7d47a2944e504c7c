"""Whether a transfer may dial a phone number: the leg it makes goes out on a trunk, a call of
the organization's as much as one it places (``docs/transfers.md``).

A transfer to an E.164 number, asked through ``POST /calls/{id}/control``, the
``transfer_call`` tool or a squad member's, passes the checks ``POST /calls/outbound`` makes
before the PBX is asked for anything:

* the trunk: the call's number's, open to its organization (``[[trunks]] organizations``,
  ``trunk_access.py``); a call on no number of the organization has no trunk to go out on
  (``403 Trunk not allowed``);
* the organization's monthly spending limit (``billing.py``, ``402 Spending limit reached``);
* the organization's calls at once (``[[limits.organizations]]`` or the operator's override):
  the leg is one call more, so a transfer is refused while the organization's calls, this one
  among them, are at the limit (``429 Call limit reached``).

A transfer to an internal target (an extension, a queue, a SIP URI of the operator's
``internal_targets``) dials no trunk and passes none of these. A test call's transfer dials
nothing at all (``commands.py``): it never gets here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from voicedock.calls.outbound.dial_pacing import OrganizationLimits
from voicedock.domain.records import Call
from voicedock.errors import ApiError, Forbidden, PaymentRequired, RateLimited
from voicedock.organizations.billing import spend_refusal
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import Store

# The reasons of a refused leg, as its ``transfer-refused`` call event names them.
TRUNK_NOT_ALLOWED = "trunk-not-allowed"
SPEND_LIMIT = "spend-limit-reached"
CALL_LIMIT = "call-limit-reached"
# When a transfer refused at the organization's calls at once may be asked again.
CALL_LIMIT_RETRY_SECONDS = 5


@dataclass(frozen=True, slots=True)
class LegRefused:
    """Why the leg may not be dialled: the event's ``reason`` and the client's error."""

    reason: str
    error: ApiError


class TrunkLegs:
    """The checks of a transfer's leg to a phone number."""

    def __init__(
        self,
        store: Store,
        access: TrunkAccess,
        limits: OrganizationLimits,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._access = access
        self._limits = limits
        self._now = clock

    async def admit(self, call: Call) -> str | LegRefused:
        """The PBX endpoint of the trunk the leg of ``call``'s transfer goes out on, or why
        it may not be dialled."""
        org_id = call.organization_id
        number = (
            None
            if call.number_id is None
            else await self._store.get_phone_number(org_id, call.number_id)
        )
        trunk = None if number is None else await self._store.get_trunk(number.trunk)
        if number is None or trunk is None:
            return LegRefused(
                TRUNK_NOT_ALLOWED,
                Forbidden(
                    "the call is on no phone number of your organization: there is no trunk "
                    "to transfer it to a phone number through",
                    error="Trunk not allowed",
                ),
            )
        if not self._access.serves(number.trunk, org_id):
            return LegRefused(
                TRUNK_NOT_ALLOWED,
                Forbidden(
                    f"the call's trunk {number.trunk!r} is not open to your organization",
                    error="Trunk not allowed",
                ),
            )
        spent = await spend_refusal(self._store, org_id, self._now())
        if spent is not None:
            return LegRefused(SPEND_LIMIT, PaymentRequired(spent))
        async with self._store.transaction(brief=True) as tx:
            most = await self._limits.max_calls(tx, org_id)
            calls = await tx.count_active_calls("organization_id", org_id) if most else 0
        if most and calls >= most:
            return LegRefused(
                CALL_LIMIT,
                RateLimited(
                    f"the organization has {calls} calls at once, its limit ({most}): the "
                    "transfer's leg would be one more; retry after the time in Retry-After",
                    error="Call limit reached",
                    retry_after_seconds=CALL_LIMIT_RETRY_SECONDS,
                ),
            )
        return trunk.pbx_endpoint


__all__ = [
    "CALL_LIMIT",
    "SPEND_LIMIT",
    "TRUNK_NOT_ALLOWED",
    "LegRefused",
    "TrunkLegs",
]
