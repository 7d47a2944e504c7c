"""What an outbound call will run: its resolved assistant (``calls.assistants.resolve``) and
the caller number it may use."""

from __future__ import annotations

from dataclasses import dataclass

from voicedock.calls.assistants.resolve import ResolvedAssistant
from voicedock.domain.json import JsonObject
from voicedock.domain.records import Call, PhoneNumber
from voicedock.errors import BadRequest, Forbidden, NotFound
from voicedock.organizations.trunk_access import TrunkAccess
from voicedock.store.base import NumberLookups


@dataclass(frozen=True, slots=True)
class NewCall:
    """An outbound call about to be placed, its assistant resolved (``Placement.place``)."""

    call_id: str
    organization_id: str
    destination: str  # E.164, checked against the call policy
    assistant: ResolvedAssistant
    context: str | None
    ring_timeout_seconds: int
    number_id: str | None = None  # this caller number; None: one of number_ids / the pool
    number_ids: tuple[str, ...] = ()  # empty: the organization's pool
    campaign_id: str | None = None
    campaign_max: int = 0  # the campaign's calls at once (0: no limit)
    api_key_id: str | None = None  # the API key that asked for it, recorded on the call
    metadata: JsonObject | None = None  # the client's own object, stored with the call
    # The stored ``scheduled`` call this dials now (None: a new call, stored as it is placed).
    scheduled: Call | None = None


async def check_number_choice(
    store: NumberLookups, org_id: str, number_id: str | None, access: TrunkAccess
) -> PhoneNumber | None:
    """Tell "not yours"/"none configured"/"trunk not open to you" apart before reserving (which
    only says "none"). Another organization's number is "not found", as a missing one. The
    number ``number_id`` names (``None`` without one: the organization's pool). ``store``: the
    store, or the transaction a claim runs in."""
    if number_id is not None:
        number = await store.get_phone_number(org_id, number_id)
        if number is None:
            raise NotFound("no phone number with this id", error="Phone number not found")
        if not access.serves(number.trunk, org_id):
            raise Forbidden(
                f"the number's trunk {number.trunk!r} is not open to your organization",
                error="Trunk not allowed",
            )
        return number
    numbers = await store.list_phone_numbers(org_id)
    if not numbers:
        raise BadRequest(
            "the organization has no phone numbers to call from", error="No phone number"
        )
    if not any(access.serves(n.trunk, org_id) for n in numbers):
        raise Forbidden(
            "none of the organization's phone numbers is on a trunk open to it",
            error="Trunk not allowed",
        )
    return None
