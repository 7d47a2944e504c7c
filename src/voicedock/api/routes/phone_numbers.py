"""``/phone-numbers``: the operator's numbers. An organization reads its own and sets their
label and assistant (or squad); creating, moving and removing one is the operator's (403)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.models.base import parse
from voicedock.api.models.phone_numbers import PhoneNumber as PhoneNumberReply
from voicedock.api.models.phone_numbers import PhoneNumberUpdate
from voicedock.api.resources import (
    Caller,
    Listing,
    Patch,
    Refused,
    Resource,
    mount,
)
from voicedock.domain.records import PhoneNumber
from voicedock.errors import Forbidden, Unprocessable

routes = web.RouteTableDef()


def _operators_numbers(what: str) -> Forbidden:
    return Forbidden(
        f"{what}: phone numbers are created, moved and removed by the operator of this node"
        " (its configuration or 'voicedock numbers'); an organization may change a number's"
        " label, assistant_id, squad_id and language",
        error="Operator setting",
    )


def parse_number_patch(_caller: Caller, base: PhoneNumber, body: object) -> PhoneNumber:
    """What an organization may change of a number: its label, its assistant and squad, the
    language its calls open in."""
    patch = parse(body, PhoneNumberUpdate)
    refused = patch.operators()
    if refused:
        raise _operators_numbers(f"{refused[0]} is the operator's")
    return patch.applied(base)


async def _update_number(caller: Caller, updated: PhoneNumber) -> PhoneNumber:
    assistant_id = updated.assistant_id
    org_id = updated.organization_id
    if assistant_id is not None and await caller.store.get_assistant(org_id, assistant_id) is None:
        raise Unprocessable("no assistant with this id", error="Unknown assistant")
    squad_id = updated.squad_id
    if squad_id is not None and await caller.store.get_squad(org_id, squad_id) is None:
        raise Unprocessable("squad_id: no squad with this id", error="Unknown squad")
    async with caller.store.transaction() as tx:
        await tx.update_phone_number(updated)
    return updated


PHONE_NUMBERS: Resource[PhoneNumber] = Resource(
    path="/phone-numbers",
    noun="phone number",
    lookup=lambda c, number_id: c.store.get_phone_number(c.organization_id, number_id),
    serialize=PhoneNumberReply.of,
    list=Listing(run=lambda c: c.store.list_phone_numbers(c.organization_id)),
    # The operator assigns and removes numbers: refused for every key, nothing read or stored
    # (a DELETE of another organization's number, or of none, is the 404 as everywhere).
    create=Refused(lambda: _operators_numbers("no API key creates a phone number")),
    patch=Patch(parse=parse_number_patch, run=_update_number),
    delete=Refused(lambda: _operators_numbers("no API key removes a phone number")),
)


RESOURCES = (PHONE_NUMBERS,)
mount(routes, *RESOURCES)
