"""What squads hold, and what holds a squad, is not deleted under them (``409`` naming what
uses it, as ``referencing.py`` refuses a template an assistant names):

* a saved assistant a squad names as a member (``refuse_while_in_squads``): the squad's next
  call would be refused;
* a squad a phone number answers with, or a campaign still calling places its calls with
  (``refuse_while_squad_used``): the number's next call would find no squad, and the
  campaign's own squad could no longer be named.

A call placed with a squad keeps its members as placed: deleting either changes no call.
"""

from __future__ import annotations

from collections.abc import Sequence

from voicedock.calls.assistants.referencing import NAMED_AT_MOST
from voicedock.domain.campaigns import Campaign
from voicedock.errors import Conflict
from voicedock.store.base import OldestFirstQuery, Store

_PAGE = 100


async def refuse_while_in_squads(store: Store, organization_id: str, assistant_id: str) -> None:
    """409 while a squad of the organization has the assistant as a member, naming them."""
    names: list[str] = []
    after: str | None = None
    while True:
        page = await store.list_squads(OldestFirstQuery(organization_id, _PAGE, after=after))
        names += [
            s.name for s in page.records if any(m.assistant_id == assistant_id for m in s.members)
        ]
        if len(page.records) < _PAGE:
            break
        after = page.records[-1].id
    if names:
        raise Conflict(
            f"the assistant is a member of squad(s): {_named(sorted(names))}; "
            "remove it from them first"
        )


async def refuse_while_squad_used(store: Store, organization_id: str, squad_id: str) -> None:
    """409 while a phone number of the organization answers with the squad, or a campaign
    that is still calling places its calls with it, naming them."""
    numbers = [
        n.number for n in await store.list_phone_numbers(organization_id) if n.squad_id == squad_id
    ]
    if numbers:
        raise Conflict(
            f"phone number(s) {_named(sorted(numbers))} answer with this squad; "
            "set another squad or assistant on them first"
        )
    campaigns = [c.name for c in await _calling(store, organization_id) if _places(c, squad_id)]
    if campaigns:
        raise Conflict(
            f"campaign(s) {_named(sorted(campaigns))} place their calls with this squad; "
            "cancel them or let them finish first"
        )


async def _calling(store: Store, organization_id: str) -> list[Campaign]:
    found: list[Campaign] = []
    offset = 0
    while True:
        page, total = await store.list_campaigns(organization_id, _PAGE, offset)
        found += [c for c in page if not c.status.terminal]
        offset += len(page)
        if not page or offset >= total:
            return found


def _places(campaign: Campaign, squad_id: str) -> bool:
    return campaign.squad is not None and campaign.squad.squad_id == squad_id


def _named(names: Sequence[str]) -> str:
    more = len(names) - NAMED_AT_MOST
    shown = ", ".join(names[:NAMED_AT_MOST])
    return f"{shown} and {more} more" if more > 0 else shown
