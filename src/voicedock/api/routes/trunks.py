"""``/trunks``: the trunks open to the organization (read-only)."""

from __future__ import annotations

from aiohttp import web

from voicedock.api.models.phone_numbers import Trunk as TrunkReply
from voicedock.api.resources import (
    Caller,
    Listing,
    Resource,
    mount,
)
from voicedock.domain.records import Trunk

routes = web.RouteTableDef()


async def _visible_trunks(caller: Caller) -> dict[str, Trunk]:
    """The trunks the caller's organization may use ([[trunks]] organizations)."""
    service, org_id = caller.service, caller.organization_id
    trunks = {t.name: t for t in await service.store.list_trunks()}
    numbers = await service.store.list_phone_numbers(org_id)
    visible = service.engine.trunk_access.visible(trunks, org_id, numbers)
    return {name: trunk for name, trunk in trunks.items() if name in visible}


async def _list_trunks(caller: Caller) -> list[Trunk]:
    return list((await _visible_trunks(caller)).values())


async def _lookup_trunk(caller: Caller, name: str) -> Trunk | None:
    return (await _visible_trunks(caller)).get(name)


TRUNKS: Resource[Trunk] = Resource(
    path="/trunks",
    noun="trunk",
    id_name="name",
    lookup=_lookup_trunk,
    serialize=TrunkReply.of,
    list=Listing(run=_list_trunks),
)


RESOURCES = (TRUNKS,)
mount(routes, *RESOURCES)
