"""Compliance through the REST API (FakePbx as the far end): the do-not-call list refuses
``POST /calls/outbound``, a scheduled call and a transfer with 403 and its reason, nothing
reaching the PBX; an organization's entries never touch another organization; the operator's
list applies to every organization. Calling hours are read in the callee's local time on the
engine's clock, shifted here: a US number is refused outside 08:00-21:00 of its zone, and a
number spanning several zones takes the strictest; a campaign's contact waits for its hours."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.conftest import Api, serving
from api.contract import is_valid
from api.test_control_api import active_call, control
from api.test_organization_api import admin as admin_headers
from api.test_per_call_api import moment, until_status
from api.test_scheduled_calls_api import scheduled_while_down, status_events
from fakes.world import DESTINATION, SUPPORT_ID, make_settings
from voicedock.config import Settings
from voicedock.domain.records import utcnow

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

NEW_YORK = "+12125550101"  # America/New_York
TOLL_FREE = "+18005550100"  # US toll-free: every zone of the North American plan
AMSTERDAM = "+31201234567"


def serving_at(settings: Settings, moment: datetime) -> AbstractAsyncContextManager[Api]:
    """The app whose engine's clock reads ``moment`` now (and runs on from it)."""
    shift = moment - utcnow()
    return serving(settings, clock=lambda: utcnow() + shift)


def us_settings(database_url: str) -> Settings:
    settings = make_settings(database_url)
    settings.policy.allowed_countries = ["NL", "DE", "US"]
    return settings


async def outbound(api: Api, destination: str, key: str | None = None, **extra: Any) -> Any:
    body = {"destination": destination, "assistant_id": SUPPORT_ID, **extra}
    if key is not None:
        body = {"destination": destination, "assistant": {"first_message": "Hi"}, **extra}
    return await api.client.post("/calls/outbound", json=body, headers=api.auth(key))


async def refused(resp: Any, error: str, reason: str) -> dict[str, Any]:
    assert resp.status == 403, await resp.text()
    body: dict[str, Any] = await resp.json()
    assert body["error"] == error
    assert body["reason"] == reason
    return body


# -- the do-not-call list ------------------------------------------------------------------------


async def test_a_listed_number_is_refused_and_never_reaches_the_pbx(api: Api) -> None:
    added = await api.client.post("/do-not-call", json={"number": DESTINATION}, headers=api.auth())
    assert added.status == 201
    assert await added.json() == {"success": True, "number": DESTINATION}
    resp = await outbound(api, DESTINATION)
    body = await refused(resp, "Do not call", "do-not-call")
    assert "do-not-call list" in body["message"]
    # Scheduled for later: refused now too, nothing stored to dial.
    later = (utcnow() + timedelta(hours=1)).isoformat()
    await refused(
        await outbound(api, DESTINATION, scheduled_at=later), "Do not call", "do-not-call"
    )
    assert api.pbx.originated == []
    listed = await api.client.get("/calls", headers=api.auth())
    assert (await listed.json())["calls"] == []
    # Removed from the list: the number is called again.
    removed = await api.client.delete(f"/do-not-call/{DESTINATION}", headers=api.auth())
    assert removed.status == 200
    assert (await outbound(api, DESTINATION)).status == 200
    assert [r.destination for r in api.pbx.originated] == [DESTINATION]


async def test_a_scheduled_call_to_a_number_listed_meanwhile_ends_never_dialed(
    database_url: str,
) -> None:
    settings = make_settings(database_url)
    call_id = await scheduled_while_down(settings, scheduled_at=moment(2.0))
    async with serving(settings) as api:
        api.pbx.connected = False  # not dialed before the entry is in (due in 2 s anyway)
        added = await api.client.post(
            "/do-not-call", json={"number": DESTINATION}, headers=api.auth()
        )
        assert added.status == 201
        api.pbx.connected = True
        call = await until_status(api, call_id, "ended")
        assert call["end_reason"] == "do-not-call"
        assert call["started_at"] is None
        assert status_events(call) == [("scheduled", None), ("ended", "do-not-call")]
        assert api.pbx.originated == []


async def test_a_range_lists_every_number_it_starts_with(api: Api) -> None:
    added = await api.client.post("/do-not-call", json={"number": "+316123*"}, headers=api.auth())
    assert added.status == 201
    await refused(await outbound(api, "+31612345678"), "Do not call", "do-not-call")
    assert (await outbound(api, "+31622345678")).status == 200  # +3162... is not in it
    assert [r.destination for r in api.pbx.originated] == ["+31622345678"]
    listed = await api.client.get("/do-not-call", headers=api.auth())
    assert await listed.json() == {"numbers": ["+316123*"]}


@pytest.mark.parametrize(
    "entry",
    ["+999*", "+31 20 1234567", "+3120123456789012", "+31*0", "0612345678", "+3190*1", "+31"],
)
async def test_entries_that_are_no_number_nor_range_are_400(api: Api, entry: str) -> None:
    resp = await api.client.post("/do-not-call", json={"number": entry}, headers=api.auth())
    assert resp.status == 400, entry
    assert is_valid(await resp.json(), "Error")


async def test_one_organizations_list_never_touches_another(api: Api) -> None:
    await api.client.post("/do-not-call", json={"number": DESTINATION}, headers=api.auth())
    globex = api.globex_key
    # Globex neither sees nor removes Acme's entry, and calls the number.
    listed = await api.client.get("/do-not-call", headers=api.auth(globex))
    assert await listed.json() == {"numbers": []}
    gone = await api.client.delete(f"/do-not-call/{DESTINATION}", headers=api.auth(globex))
    assert gone.status == 404
    assert (await outbound(api, DESTINATION, key=globex)).status == 200
    await refused(await outbound(api, DESTINATION), "Do not call", "do-not-call")
    assert len(api.pbx.originated) == 1
    acme = await api.client.get("/do-not-call", headers=api.auth())
    assert await acme.json() == {"numbers": [DESTINATION]}


async def test_the_operators_list_applies_to_every_organization(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.compliance.do_not_call = ["+3120*"]
    settings.compliance.check()
    async with serving_at(settings, utcnow()) as api:
        for key in (api.acme_key, api.globex_key):
            await refused(await outbound(api, AMSTERDAM, key=key), "Do not call", "do-not-call")
        # The organizations' own lists show their own entries only.
        listed = await api.client.get("/do-not-call", headers=api.auth())
        assert await listed.json() == {"numbers": []}
        assert api.pbx.originated == []


async def test_a_csv_import_adds_entries_and_reports_bad_rows(api: Api) -> None:
    csv = "number,note\n+31612345678,asked\n+3120*,office\nnot a number\n\n+999*\n+31612345678\n"
    resp = await api.client.post(
        "/do-not-call/import", data=csv, headers={**api.auth(), "Content-Type": "text/csv"}
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert is_valid(body, "DoNotCallImported")
    assert body["added"] == 2
    assert [r["row"] for r in body["rejected"]] == [4, 6]
    assert "E.164" in body["rejected"][0]["message"]
    assert "country calling code" in body["rejected"][1]["message"]
    listed = await api.client.get("/do-not-call", headers=api.auth())
    assert await listed.json() == {"numbers": ["+3120*", "+31612345678"]}
    await refused(await outbound(api, AMSTERDAM), "Do not call", "do-not-call")
    # Again: nothing new.
    again = await api.client.post(
        "/do-not-call/import", data=csv, headers={**api.auth(), "Content-Type": "text/csv"}
    )
    assert (await again.json())["added"] == 0
    # No row an entry: the wrong file, refused whole.
    wrong = await api.client.post(
        "/do-not-call/import",
        data="name\nAnn\n",
        headers={**api.auth(), "Content-Type": "text/csv"},
    )
    assert wrong.status == 400
    assert (await wrong.json())["error"] == "Invalid request"
    # Not a CSV: 415.
    json_body = await api.client.post("/do-not-call/import", json=[], headers=api.auth())
    assert json_body.status == 415


async def test_a_csv_import_reads_any_line_end_and_refuses_what_is_no_csv_by_name(
    api: Api,
) -> None:
    """Rows ending in a lone CR are rows; a CSV the csv module cannot read (a value over its
    field limit) is refused naming its line, by the import's own title (it was a 500)."""
    headers = {**api.auth(), "Content-Type": "text/csv"}
    mac = "number\r+31612345678\r+3120*\r"
    resp = await api.client.post("/do-not-call/import", data=mac, headers=headers)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["added"] == 2
    huge = "+31612345679\n" + "1" * 200_000 + "\n"
    refused = await api.client.post("/do-not-call/import", data=huge, headers=headers)
    assert refused.status == 400, await refused.text()
    answer = await refused.json()
    assert answer["error"] == "Invalid request", answer
    assert answer["message"].startswith("CSV line 2: "), answer
    listed = await api.client.get("/do-not-call", headers=api.auth())
    assert await listed.json() == {"numbers": ["+3120*", "+31612345678"]}


async def test_imports_and_lists_are_bounded(database_url: str) -> None:
    settings = make_settings(database_url)
    settings.compliance.max_organization_entries = 3
    async with serving_at(settings, utcnow()) as api:
        csv_headers = {**api.auth(), "Content-Type": "text/csv"}
        rows = "".join(f"+3161234{n:04d}\n" for n in range(4))
        full = await api.client.post("/do-not-call/import", data=rows, headers=csv_headers)
        assert full.status == 409
        assert (await full.json())["error"] == "Do-not-call list full"
        listed = await api.client.get("/do-not-call", headers=api.auth())
        assert await listed.json() == {"numbers": []}  # nothing of a refused import
        for n in range(3):
            number = f"+3161234{n:04d}"
            ok = await api.client.post("/do-not-call", json={"number": number}, headers=api.auth())
            assert ok.status == 201
        more = await api.client.post(
            "/do-not-call", json={"number": "+31612349999"}, headers=api.auth()
        )
        assert more.status == 409
        # Another organization's list is its own.
        globex = await api.client.post(
            "/do-not-call", json={"number": "+31612349999"}, headers=api.auth(api.globex_key)
        )
        assert globex.status == 201
        # One import reads at most 50,000 rows.
        many = "+31612345678\n" * 50_001
        big = await api.client.post("/do-not-call/import", data=many, headers=csv_headers)
        assert big.status == 413


async def test_a_transfer_to_a_listed_number_is_refused(api: Api) -> None:
    call_id = await active_call(api)
    await api.client.post("/do-not-call", json={"number": "+3120*"}, headers=api.auth())
    resp = await control(api, call_id, {"type": "transfer", "destination": AMSTERDAM})
    await refused(resp, "Do not call", "do-not-call")
    assert api.pbx.transfers == []
    events = await api.service.store.list_events(call_id)
    security = [e.data for e in events if e.type == "security"]
    assert security[0]["reason"] == "do-not-call"
    assert AMSTERDAM not in str(security)  # masked


# -- calling hours -------------------------------------------------------------------------------


async def test_a_us_number_is_refused_outside_its_local_hours(database_url: str) -> None:
    # 03:00 UTC on a winter day: 22:00 in New York.
    night = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    async with serving_at(us_settings(database_url), night) as api:
        body = await refused(
            await outbound(api, NEW_YORK), "Outside calling hours", "outside-calling-hours"
        )
        assert "08:00-21:00" in body["message"]
        assert "it is 22:00 in America/New_York" in body["message"]
        assert is_valid(body, "Error")
        # Amsterdam's number (04:00 there) has no hours by default.
        assert (await outbound(api, AMSTERDAM)).status == 200
        # Scheduled for 14:00 UTC (09:00 in New York): allowed; for 02:00 the next night: not.
        ok = await outbound(api, NEW_YORK, scheduled_at="2026-01-15T14:00:00Z")
        assert ok.status == 201, await ok.text()
        late = await outbound(api, NEW_YORK, scheduled_at="2026-01-16T02:30:00Z")
        await refused(late, "Outside calling hours", "outside-calling-hours")
        assert [r.destination for r in api.pbx.originated] == [AMSTERDAM]


async def test_within_its_hours_a_us_number_is_called(database_url: str) -> None:
    morning = datetime(2026, 1, 15, 14, 30, tzinfo=UTC)  # 09:30 in New York
    async with serving_at(us_settings(database_url), morning) as api:
        assert (await outbound(api, NEW_YORK)).status == 200
        assert [r.destination for r in api.pbx.originated] == [NEW_YORK]


async def test_a_number_of_several_zones_takes_the_strictest(database_url: str) -> None:
    # 15:00 UTC: 10:00 in New York, 07:00 in Los Angeles, 05:00 in Honolulu, 01:00 in Guam.
    moment = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
    async with serving_at(us_settings(database_url), moment) as api:
        assert (await outbound(api, NEW_YORK)).status == 200
        body = await refused(
            await outbound(api, TOLL_FREE), "Outside calling hours", "outside-calling-hours"
        )
        assert "time zones" in body["message"]
        assert [r.destination for r in api.pbx.originated] == [NEW_YORK]


async def test_the_operators_hours_and_default(database_url: str) -> None:
    settings = us_settings(database_url)
    settings.compliance.calling_hours.default = "09:00-17:00"
    settings.compliance.calling_hours.countries = {"US": "10:00-20:00"}
    # 14:30 UTC: 15:30 in Amsterdam (within the default), 09:30 in New York (before 10:00).
    async with serving_at(settings, datetime(2026, 1, 15, 14, 30, tzinfo=UTC)) as api:
        assert (await outbound(api, AMSTERDAM)).status == 200
        body = await refused(
            await outbound(api, NEW_YORK), "Outside calling hours", "outside-calling-hours"
        )
        assert "10:00-20:00" in body["message"]
    async with serving_at(settings, datetime(2026, 1, 15, 17, 30, tzinfo=UTC)) as api:
        body = await refused(
            await outbound(api, AMSTERDAM), "Outside calling hours", "outside-calling-hours"
        )
        assert "it is 18:30 in Europe/Amsterdam" in body["message"]


async def test_a_campaign_contact_outside_its_hours_waits(database_url: str) -> None:
    # Ahead of the real clock (contacts are due from when they are added): 03:30 UTC
    # tomorrow, 22:30 or 23:30 in New York.
    night = (utcnow() + timedelta(days=1)).replace(hour=3, minute=30, second=0, microsecond=0)
    new_york = ZoneInfo("America/New_York")
    opens = datetime.combine(
        night.astimezone(new_york).date() + timedelta(days=1), time(8, 0), tzinfo=new_york
    )
    async with serving_at(us_settings(database_url), night) as api:
        created = await api.client.post(
            "/campaigns",
            json={
                "name": "Evening",
                "assistant": {"first_message": "Hello"},
                "contacts": [{"destination": NEW_YORK}, {"destination": AMSTERDAM}],
                "calling_window": None,  # the operator's hours alone
            },
            headers=api.auth(),
        )
        assert created.status == 201, await created.text()
        campaign_id = (await created.json())["id"]
        async with asyncio.timeout(10):
            while not api.pbx.originated:
                await asyncio.sleep(0.05)
        await api.service.dialer.dial_due()
        assert [r.destination for r in api.pbx.originated] == [AMSTERDAM]
        pending = await api.client.get(
            f"/campaigns/{campaign_id}/contacts?state=pending", headers=api.auth()
        )
        (waiting,) = (await pending.json())["contacts"]
        assert waiting["destination"] == NEW_YORK
        assert waiting["attempts"] == 0
        # Deferred, not failed: to 08:00 in New York.
        waits_until = datetime.fromisoformat(waiting["next_attempt_at"].replace("Z", "+00:00"))
        assert waits_until == opens


async def test_an_organizations_own_hours_narrow_the_operators(database_url: str) -> None:
    settings = us_settings(database_url)
    # 14:30 UTC: 09:30 in New York, 15:30 in Amsterdam.
    async with serving_at(settings, datetime(2026, 1, 15, 14, 30, tzinfo=UTC)) as api:
        admin = await admin_headers(api)
        for bad in ("10:00-10:00", "25:00-26:00", "10-15", 9):
            resp = await api.client.patch(
                "/organization", json={"calling_hours": bad}, headers=admin
            )
            assert resp.status == 400, bad
        resp = await api.client.patch(
            "/organization", json={"calling_hours": "10:00-15:00"}, headers=admin
        )
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["calling_hours"] == "10:00-15:00"
        body = await refused(
            await outbound(api, NEW_YORK), "Outside calling hours", "outside-calling-hours"
        )
        assert "10:00-15:00" in body["message"]
        assert "it is 09:30 in America/New_York" in body["message"]
        # A country of no operator's hours is narrowed too.
        await refused(
            await outbound(api, AMSTERDAM), "Outside calling hours", "outside-calling-hours"
        )
        # Globex keeps the operator's hours alone.
        assert (await outbound(api, NEW_YORK, key=api.globex_key)).status == 200
        theirs = await api.client.get("/organization", headers=api.auth(api.globex_key))
        assert (await theirs.json())["calling_hours"] is None
        # Hours wider than the operator's do not widen them.
        await api.client.patch(
            "/organization", json={"calling_hours": "06:00-23:00"}, headers=admin
        )
    async with serving_at(settings, datetime(2026, 1, 15, 12, 30, tzinfo=UTC)) as api:
        body = await refused(
            await outbound(api, NEW_YORK), "Outside calling hours", "outside-calling-hours"
        )
        assert "08:00-21:00" in body["message"]  # 07:30 in New York: the operator's hours
        assert (await outbound(api, AMSTERDAM)).status == 200  # 13:30: within its own
        assert [r.destination for r in api.pbx.originated] == [AMSTERDAM]


async def test_entries_are_removed_by_their_path_however_written(api: Api) -> None:
    for entry in ("+3120*", "+31612345678"):
        await api.client.post("/do-not-call", json={"number": entry}, headers=api.auth())
    encoded = await api.client.delete("/do-not-call/%2B3120%2A", headers=api.auth())
    assert encoded.status == 200, await encoded.text()
    plain = await api.client.delete("/do-not-call/+31612345678", headers=api.auth())
    assert plain.status == 200
    gone = await api.client.delete("/do-not-call/+31612345678", headers=api.auth())
    assert gone.status == 404
    listed = await api.client.get("/do-not-call", headers=api.auth())
    assert await listed.json() == {"numbers": []}
    # The import's path is no entry's.
    wrong = await api.client.delete("/do-not-call/import", headers=api.auth())
    assert wrong.status == 405
    assert wrong.headers["Allow"] == "POST"
