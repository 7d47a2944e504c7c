"""Scheduled calls as the operator's configuration stands when they come due, and shared fairly
(on SQLite and PostgreSQL): a call whose destination the operator blocked after it was
scheduled, or whose caller number was given away, ends never dialed with its ``end_reason``;
an organization has at most ``[limits] scheduled_calls_per_organization`` calls waiting
(``429 Too many scheduled calls`` beyond); and one organization's due calls, held back by its
own limit or simply many, never keep another organization's due call from being dialed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.conftest import Api, serving
from fakes.world import (
    ACME,
    ACME_NUMBERS,
    DESTINATION,
    GLOBEX,
    GLOBEX_ASSISTANT_ID,
    SUPPORT_ID,
    make_settings,
    number_id,
)
from voicedock.config import OrganizationLimitSettings, Settings, TrunkSettings
from voicedock.organizations.numbers import add_number
from voicedock.organizations.settings import set_limits

from .test_per_call_api import moment, status_of, until_status

pytestmark = pytest.mark.unit


async def schedule(api: Api, key: str | None = None, **fields: Any) -> Any:
    """``POST /calls/outbound`` with ``scheduled_at`` (ACME's Support assistant by default)."""
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID, **fields}
    return await api.client.post("/calls/outbound", json=body, headers=api.auth(key))


async def scheduled_id(api: Api, key: str | None = None, **fields: Any) -> str:
    resp = await schedule(api, key, **fields)
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["call_id"])


async def scheduled_while_down(settings: Settings, **fields: Any) -> str:
    """A call scheduled on a node whose PBX is down (none of its calls is dialed), which then
    stops: the operator changes ``settings`` before the next start."""
    async with serving(settings) as api:
        api.pbx.connected = False
        return await scheduled_id(api, **fields)


async def until_status_of(
    api: Api, key: str, call_id: str, wanted: str, within: float = 5.0
) -> dict[str, Any]:
    """``GET /calls/{id}`` with ``key`` (its organization's) until the call is ``wanted``."""
    async with asyncio.timeout(within):
        while True:
            resp = await api.client.get(f"/calls/{call_id}", headers=api.auth(key))
            assert resp.status == 200
            call: dict[str, Any] = await resp.json()
            if call["status"] == wanted:
                return call
            await asyncio.sleep(0.05)


async def until_originated(api: Api, count: int, within: float = 15.0) -> list[str]:
    """The calls the PBX was asked to originate, once there are ``count`` (an originate runs
    a moment after its call is stored ``connecting``)."""
    async with asyncio.timeout(within):
        while len(api.pbx.originated) < count:
            await asyncio.sleep(0.05)
    return [o.call_id for o in api.pbx.originated]


def status_events(call: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [
        (e["data"]["to"], e["data"].get("end_reason"))
        for e in call["events"]
        if e["type"] == "status"
    ]


async def test_a_call_to_a_range_blocked_since_it_was_scheduled_ends_never_dialed(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    call_id = await scheduled_while_down(settings, scheduled_at=moment(0.5))
    settings.policy.extra_blocked_prefixes = [DESTINATION[:5]]  # the operator blocks the range
    async with serving(settings) as api:
        call = await until_status(api, call_id, "ended")
        assert call["end_reason"] == "destination-refused"
        assert call["started_at"] is None
        assert status_events(call) == [("scheduled", None), ("ended", "destination-refused")]
        assert api.pbx.originated == []
        # A call scheduled now to the same range is refused at once, as before.
        refused = await schedule(api, scheduled_at=moment(60))
        assert refused.status == 403
        assert (await refused.json())["error"] == "Destination not allowed"


async def test_a_call_to_a_country_no_longer_allowed_ends_never_dialed(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    call_id = await scheduled_while_down(settings, scheduled_at=moment(0.5))
    settings.policy.allowed_countries = ["DE"]
    async with serving(settings) as api:
        call = await until_status(api, call_id, "ended")
        assert call["end_reason"] == "destination-refused"
        assert api.pbx.originated == []


async def test_a_call_whose_caller_number_was_given_away_ends_never_dialed(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    chosen = number_id(ACME_NUMBERS[1])
    call_id = await scheduled_while_down(settings, scheduled_at=moment(0.5), number_id=chosen)
    settings.numbers[1].organization = GLOBEX  # the operator moves the number to Globex
    async with serving(settings) as api:
        call = await until_status(api, call_id, "ended")
        assert call["end_reason"] == "number-unavailable"
        # Never from another of the organization's numbers than the one asked for.
        assert api.pbx.originated == []


async def test_a_call_whose_trunk_no_longer_serves_the_organization_ends_never_dialed(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    settings.trunks.append(TrunkSettings(name="partner", endpoint="partner-ep"))
    async with serving(settings) as api:  # `voicedock numbers add` on a trunk open to all
        number, _ = await add_number(
            api.service.store, settings, "+31850835099", "partner", ACME, max_concurrent_calls=1
        )
    call_id = await scheduled_while_down(settings, scheduled_at=moment(0.5), number_id=number.id)
    settings.trunks[-1].organizations = [GLOBEX]  # the operator closes the trunk to Acme
    async with serving(settings) as api:
        call = await until_status(api, call_id, "ended")
        assert call["end_reason"] == "number-unavailable"
        assert api.pbx.originated == []


async def test_a_call_the_configuration_still_allows_is_dialed_after_a_restart(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    call_id = await scheduled_while_down(
        settings, scheduled_at=moment(0.5), number_id=number_id(ACME_NUMBERS[1])
    )
    settings.policy.extra_blocked_prefixes = ["+3162"]  # another range
    async with serving(settings) as api:
        call = await until_status(api, call_id, "connecting")
        assert call["assistant_phone"] == ACME_NUMBERS[1]
        assert await until_originated(api, 1) == [call_id]


async def test_an_organization_has_at_most_its_bound_of_calls_waiting(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.limits.scheduled_calls_per_organization = 2
    async with serving(settings) as api:
        limits = (await (await api.client.get("/organization", headers=api.auth())).json())[
            "limits"
        ]
        assert (limits["max_scheduled_calls"], limits["max_scheduled_calls_source"]) == (
            2,
            "configuration",
        )
        first = await scheduled_id(api, scheduled_at=moment(3600))
        await scheduled_id(api, scheduled_at=moment(7200))
        refused = await schedule(api, scheduled_at=moment(60))
        assert refused.status == 429
        body = await refused.json()
        assert body["error"] == "Too many scheduled calls"
        assert "2 calls scheduled" in body["message"]
        # Until the first waiting call is due, when it leaves the waiting ones.
        assert 3590 <= int(refused.headers["Retry-After"]) <= 3600
        listed = await (await api.client.get("/calls?status=scheduled", headers=api.auth())).json()
        assert len(listed["calls"]) == 2  # nothing stored
        # Another organization's bound is its own; a call placed now is no scheduled call.
        await scheduled_id(
            api, api.globex_key, assistant_id=GLOBEX_ASSISTANT_ID, scheduled_at=moment(60)
        )
        now = await schedule(api)
        assert now.status == 200, await now.text()
        # A cancelled call no longer waits: room for one more.
        ended = await api.client.post(
            f"/calls/{first}/control", json={"type": "end-call"}, headers=api.auth()
        )
        assert ended.status == 200, await ended.text()
        await scheduled_id(api, scheduled_at=moment(60))
        assert (await schedule(api, scheduled_at=moment(60))).status == 429
        # The operator's override (`voicedock organizations set-limits --max-scheduled-calls`).
        await set_limits(api.service.store, ACME, max_scheduled_calls=3)
        limits = (await (await api.client.get("/organization", headers=api.auth())).json())[
            "limits"
        ]
        assert (limits["max_scheduled_calls"], limits["max_scheduled_calls_source"]) == (
            3,
            "operator",
        )
        await scheduled_id(api, scheduled_at=moment(60))
        assert (await schedule(api, scheduled_at=moment(60))).status == 429


async def test_an_organization_held_back_by_its_limit_never_holds_back_another(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    settings.limits.organizations = [
        OrganizationLimitSettings(organization=ACME, max_concurrent_calls=1)
    ]
    async with serving(settings) as api:
        busy = (await (await schedule(api)).json())["call_id"]
        await api.pbx.answer(busy)  # Acme is at its limit: its scheduled calls wait
        due = moment(-30)
        held = [await scheduled_id(api, scheduled_at=due) for _ in range(101)]
        globex = await scheduled_id(
            api, api.globex_key, assistant_id=GLOBEX_ASSISTANT_ID, scheduled_at=moment(-20)
        )
        await until_status_of(api, api.globex_key, globex, "connecting", within=15)
        assert await until_originated(api, 2) == [busy, globex]
        assert {(await status_of(api, c))["status"] for c in held} == {"scheduled"}
        await api.pbx.hang_up_remote(busy)  # room for one of Acme's
        assert (await until_originated(api, 3))[2] in held


async def test_an_organization_with_many_due_calls_takes_turns_with_another(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    for number in settings.numbers:
        number.max_concurrent_calls = 50
    async with serving(settings) as api:
        api.pbx.connected = False  # every call below is due before the dialer may dial
        acme_due, globex_due = moment(-5), moment(-4)
        acme = [await scheduled_id(api, scheduled_at=acme_due) for _ in range(30)]
        globex = await scheduled_id(
            api, api.globex_key, assistant_id=GLOBEX_ASSISTANT_ID, scheduled_at=globex_due
        )
        api.pbx.connected = True
        await until_status_of(api, api.globex_key, globex, "connecting")
        dialed = await until_originated(api, 31)
    # Acme's call due first, then Globex's, though Acme has 29 more due before it.
    assert dialed[:2] == [acme[0], globex]
    assert sorted(dialed) == sorted([*acme, globex])
