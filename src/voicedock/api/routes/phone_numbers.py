"""``/phone-numbers``: the operator's numbers. An organization reads its own and sets their
label and assistant (or squad); creating, moving and removing one is the operator's (403)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.body import read_json
from voicedock.api.models.base import parse, reply
from voicedock.api.models.phone_numbers import NumberRest, PhoneNumberUpdate
from voicedock.api.models.phone_numbers import PhoneNumber as PhoneNumberReply
from voicedock.api.resources import (
    Caller,
    Listing,
    Patch,
    Refused,
    Resource,
    caller_of,
    mount,
)
from voicedock.calls.assistants.resolve import UNKNOWN_VERSION
from voicedock.domain.records import PhoneNumber, utcnow
from voicedock.domain.traffic_split import each_version_once
from voicedock.errors import BadRequest, Forbidden, Unprocessable

routes = web.RouteTableDef()


def _operators_numbers(what: str) -> Forbidden:
    return Forbidden(
        f"{what}: phone numbers are created, moved and removed by the operator of this node"
        " (its configuration or 'voicedock numbers'); an organization may change a number's"
        " label, assistant_id, squad_id, language and traffic_split",
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
    if updated.traffic_split is not None:
        await _check_split(caller, updated)
    async with caller.store.transaction() as tx:
        await tx.update_phone_number(updated)
    return updated


async def _check_split(caller: Caller, number: PhoneNumber) -> None:
    """A number's split names versions of the assistant it answers with, each once (400
    ``Duplicate version``; 422 ``Unknown assistant version``); a squad's number has none."""
    assert number.traffic_split is not None
    if number.assistant_id is None or number.squad_id is not None:
        raise BadRequest(
            "traffic_split: a number splits its calls between versions of its assistant_id "
            "(not a squad's)"
        )
    versions = [share.version for share in number.traffic_split]
    each_version_once(versions, "traffic_split")
    for version in versions:
        found = await caller.store.get_assistant_version(
            number.organization_id, number.assistant_id, version
        )
        if found is None:
            raise Unprocessable(
                f"traffic_split: the assistant has no version {version}", error=UNKNOWN_VERSION
            )


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


@routes.post(f"{PHONE_NUMBERS.item_path}/rest")
async def rest(request: web.Request) -> web.Response:
    """The number rests (no call made from it unless named) or, with 0 hours, is back in the
    pool with its flag cleared; its calls count for its health from then."""
    caller = caller_of(request)
    number = await PHONE_NUMBERS.fetch(request)
    body = await read_json(request, caller.service.settings.server.max_body_bytes)
    rested = parse(body, NumberRest).applied(number, utcnow())
    async with caller.store.transaction() as tx:
        await tx.set_number_rest(rested)
    return reply(PhoneNumberReply.of(rested))
