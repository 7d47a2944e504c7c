"""What an organization's saved assistants reference is not deleted under them: a template or
provider key that an assistant's configuration names answers ``409`` naming those assistants
(``refuse_while_referenced``), so their calls are not refused later when they are placed.

Only saved assistants hold references that outlive a request: a transient assistant, an
override, a scheduled call and a campaign have theirs resolved when they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from voicedock.domain.assistant_config import config_json
from voicedock.domain.json import JsonValue
from voicedock.domain.records import Assistant
from voicedock.errors import Conflict
from voicedock.store.base import Store

NAMED_AT_MOST = 5  # assistants the refusal names

Refers = Callable[[Mapping[str, JsonValue]], bool]


def referencing(assistants: Iterable[Assistant], refers: Refers) -> list[str]:
    """The names of the assistants whose configuration ``refers`` to it, sorted."""
    return sorted(a.name for a in assistants if refers(config_json(a.config)))


async def refuse_while_referenced(
    store: Store, organization_id: str, refers: Refers, what: str, remedy: str | None = None
) -> None:
    """409 while an assistant of the organization references it: "``what`` assistant(s):
    A, B[; ``remedy``]", naming the first few assistants by name."""
    users = referencing(await store.list_assistants(organization_id), refers)
    if users:
        tail = f"; {remedy}" if remedy else ""
        raise Conflict(f"{what} assistant(s): {', '.join(users[:NAMED_AT_MOST])}{tail}")
