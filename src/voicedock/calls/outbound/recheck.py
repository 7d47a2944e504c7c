"""What is checked again when a scheduled call's time comes, before it is dialed.

A call asked for with ``scheduled_at`` passed the destination policy and the choice of its
caller number when it was asked for; the operator may have changed either since (a blocked
range, a country no longer allowed, a number removed, a trunk closed to the organization). So
when the dialer claims it, the same checks run again on the configuration as it is now, the
ones a campaign's contact passes too (``calls/policy.py`` ``destination_refusal``), the
do-not-call list and the calling hours in the callee's local time (``calls/compliance/``), and
the organization's monthly spending limit (``organizations/billing.py``). A refusal
is permanent: the call ends, never dialed, with its ``end_reason``. What may pass later (the
trunk's and the organization's limits, as set now, the node's offline speech) is dial
admission's, and holds the call back instead (``calls/outbound/dial_pacing.py``).

The organization itself needs no check: its calls go with it (the store deletes them with
the organization).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from voicedock.calls.compliance import Compliance, ComplianceLookups
from voicedock.calls.outbound.new_call import check_number_choice
from voicedock.calls.policy import destination_refusal
from voicedock.calls.transitions import DESTINATION_REFUSED, NUMBER_UNAVAILABLE
from voicedock.config import PolicySettings
from voicedock.domain.ids import mask_call_id
from voicedock.domain.records import Call
from voicedock.errors import BadRequest, Forbidden, NotFound
from voicedock.organizations.billing import SPEND_LIMIT_REACHED, spend_refusal
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import NumberLookups
from voicedock.store.protocols.billing import BillingLookups

log = logging.getLogger("voicedock.calls")


class RecheckLookups(NumberLookups, BillingLookups, ComplianceLookups, Protocol):
    """What the checks read: the transaction that claimed the call."""


async def scheduled_refusal(
    numbers: RecheckLookups,
    call: Call,
    policy: PolicySettings,
    compliance: Compliance,
    access: TrunkAccess,
    now: datetime,
) -> str | None:
    """Why ``call`` (scheduled, come due at ``now``) may no longer be dialed: its
    ``end_reason`` (``destination-refused``, ``number-unavailable``, ``spend-limit-reached``:
    its organization's monthly spending limit, docs/billing.md), or ``None``: it may be.
    ``numbers``: the transaction that claimed it."""
    refused = destination_refusal(call.caller_phone or "", policy)
    if refused is not None:
        log.info(
            "call %s: the destination policy refuses it now (%s)", mask_call_id(call.id), refused
        )
        return DESTINATION_REFUSED
    compliant = await compliance.refusal(
        numbers, call.organization_id, call.caller_phone or "", now
    )
    if compliant is not None:
        log.info("call %s: not dialed (%s)", mask_call_id(call.id), compliant)
        return compliant
    if call.number_id is None and call.assistant_phone is not None:
        # Asked for from this number, since removed (the store forgets a removed number's
        # id on its calls): never dialed from another caller id than the one asked for.
        log.info("call %s: its caller number was removed", mask_call_id(call.id))
        return NUMBER_UNAVAILABLE
    if await spend_refusal(numbers, call.organization_id, now) is not None:
        log.info("call %s: its organization's spending limit is reached", mask_call_id(call.id))
        return SPEND_LIMIT_REACHED
    try:
        await check_number_choice(numbers, call.organization_id, call.number_id, access)
    except (NotFound, Forbidden, BadRequest) as exc:
        log.info("call %s: no caller number to dial it from (%s)", mask_call_id(call.id), exc.error)
        return NUMBER_UNAVAILABLE
    return None
