"""GET /usage through the real app: parameters, JSON and CSV, organization scoping; a call's
``usage`` object on GET /calls/{id}."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from api.conftest import Api
from api.contract import conforms
from fakes.world import ACME, GLOBEX, SUPPORT_ID, org_id
from voicedock.domain.billing import CallCost
from voicedock.domain.ids import new_outbound_call_id
from voicedock.domain.records import Call, CallMessage, CallStatus, Direction
from voicedock.domain.squads import CallMember, CallSquad

pytestmark = pytest.mark.unit


async def _insert(
    api: Api,
    org: str,
    seconds: float,
    characters: int,
    *,
    version: int | None = None,
    cost: tuple[str, str] | None = None,
    evaluation: str | None = None,
) -> Call:
    now = datetime.now(UTC)
    answered = now - timedelta(seconds=seconds + 1)
    call = Call(
        id=new_outbound_call_id(),
        organization_id=org_id(org),
        direction=Direction.OUTBOUND,
        status=CallStatus.ENDED,
        caller_phone="+31201234567",
        assistant_phone="+31850835037",
        assistant_id=SUPPORT_ID if org == ACME else None,
        end_reason="customer-ended-call",
        started_at=answered,
        ended_at=answered + timedelta(seconds=seconds),
        speech_usage=[
            {"kind": "stt", "provider": "offline", "seconds": 1.5},
            {"kind": "tts", "provider": "offline", "characters": characters},
        ],
        created_at=now - timedelta(seconds=seconds + 5),
        assistant_version=version,
        cost=None if cost is None else _cost(*cost),
        analysis_result=None if evaluation is None else {"success_evaluation": evaluation},
    )
    async with api.service.store.transaction() as tx:
        return await tx.insert_call(call)


def _cost(amount: str, currency: str) -> CallCost:
    return CallCost(
        amount=amount, currency=currency, billed_seconds=60, rate_card_id="card",
        rate_card_version=1, direction="outbound", country="NL", number_type="mobile",
        per_minute=amount,
    )  # fmt: skip


async def test_usage_by_version_reports_each_version_s_cost_and_evaluations(api: Api) -> None:
    """Two versions of an assistant compared on numbers: each version's rated calls' cost
    summed exactly per currency, and its calls per success evaluation, most frequent first."""
    for amount in ("0.10", "0.25", "0.35"):
        await _insert(api, ACME, 3.0, 5, version=1, cost=(amount, "EUR"), evaluation="yes")
    await _insert(api, ACME, 3.0, 5, version=1, cost=("3", "JPY"), evaluation="no")
    await _insert(api, ACME, 3.0, 5, version=2, cost=("0.10", "EUR"), evaluation="no")
    await _insert(api, ACME, 3.0, 5, version=2, evaluation="No ")
    await _insert(api, ACME, 3.0, 5, version=2)  # neither rated nor evaluated
    await _insert(api, GLOBEX, 3.0, 5, cost=("9.00", "EUR"), evaluation="yes")
    body = await (
        await api.client.get("/usage?group_by=assistant_version", headers=api.auth())
    ).json()
    conforms(body, "UsageReport")
    groups = {g["key"]: g for g in body["groups"]}
    first, second = groups[f"{SUPPORT_ID}@1"], groups[f"{SUPPORT_ID}@2"]
    assert first["cost"] == [
        {"currency": "EUR", "amount": "0.70", "calls": 3},
        {"currency": "JPY", "amount": "3", "calls": 1},
    ]
    assert first["success_evaluations"] == [
        {"value": "yes", "calls": 3},
        {"value": "no", "calls": 1},
    ]
    assert second["cost"] == [{"currency": "EUR", "amount": "0.10", "calls": 1}]
    assert second["success_evaluations"] == [
        {"value": "No", "calls": 1},
        {"value": "no", "calls": 1},
    ]
    assert body["totals"]["cost"] == [
        {"currency": "EUR", "amount": "0.80", "calls": 4},
        {"currency": "JPY", "amount": "3", "calls": 1},
    ]
    csv_text = await (
        await api.client.get("/usage?group_by=assistant_version&format=csv", headers=api.auth())
    ).text()
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [
        (r["key"], r["currency"], r["amount"], r["calls"]) for r in rows if r["kind"] == "cost"
    ] == [
        (f"{SUPPORT_ID}@1", "EUR", "0.70", "3"),
        (f"{SUPPORT_ID}@1", "JPY", "3", "1"),
        (f"{SUPPORT_ID}@2", "EUR", "0.10", "1"),
    ]
    assert ("evaluation", "yes", "3") in [(r["kind"], r["value"], r["calls"]) for r in rows]


async def test_usage_of_today_counts_only_the_organizations_calls(api: Api) -> None:
    await _insert(api, ACME, 4.2, 30)
    await _insert(api, ACME, 10.0, 12)
    await _insert(api, GLOBEX, 7.0, 500)
    response = await api.client.get("/usage", headers=api.auth())
    assert response.status == 200
    body = await response.json()
    today = datetime.now(UTC).date().isoformat()
    assert body["start_date"] == body["end_date"] == today
    assert body["group_by"] == "day"
    [group] = body["groups"]
    assert group["key"] == today
    assert group["calls"] == 2
    assert group["billable_seconds"] == 5 + 10
    assert group["connected_seconds"] == pytest.approx(14.2, abs=0.002)
    assert group["tts"] == [{"provider": "offline", "characters": 42}]
    assert group["stt"] == [{"provider": "offline", "audio_seconds": 3.0}]
    assert body["totals"]["calls"] == 2
    theirs = await (await api.client.get("/usage", headers=api.auth(api.globex_key))).json()
    assert theirs["totals"]["tts"] == [{"provider": "offline", "characters": 500}]


async def test_usage_by_assistant(api: Api) -> None:
    await _insert(api, ACME, 3.0, 5)
    response = await api.client.get("/usage?group_by=assistant", headers=api.auth())
    body = await response.json()
    assert [(g["key"], g["calls"]) for g in body["groups"]] == [(SUPPORT_ID, 1)]


async def test_csv_by_format_and_by_accept(api: Api) -> None:
    await _insert(api, ACME, 4.2, 30)
    by_format = await api.client.get("/usage?format=csv", headers=api.auth())
    assert by_format.status == 200
    assert by_format.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await by_format.text())))
    today = datetime.now(UTC).date().isoformat()
    calls = [r for r in rows if r["kind"] == "calls"]
    assert calls == [
        {
            "key": today,
            "kind": "calls",
            "direction": "outbound",
            "status": "ended",
            "end_reason": "customer-ended-call",
            "provider": "",
            "calls": "1",
            "connected_seconds": "4.2",
            "billable_seconds": "5",
            "audio_seconds": "",
            "characters": "",
            "currency": "",
            "amount": "",
            "value": "",
        }
    ]
    assert [(r["kind"], r["provider"], r["characters"]) for r in rows if r["kind"] == "tts"] == [
        ("tts", "offline", "30")
    ]
    by_accept = await api.client.get("/usage", headers={**api.auth(), "Accept": "text/csv"})
    assert by_accept.content_type == "text/csv"
    assert await by_accept.text() == await by_format.text()


@pytest.mark.every_backend  # its cases query the store each its own way
@pytest.mark.parametrize("group_by", ["day", "assistant", "number", "campaign"])
async def test_a_usage_export_holds_nothing_the_caller_said_or_their_number(
    api: Api, group_by: str
) -> None:
    """What a redaction plan hides never reaches a usage export: it holds counts, seconds,
    ids, end reasons and provider labels, none of a call's words or its caller's number."""
    call = await _insert(api, ACME, 4.2, 30)
    said = "my card is 4111 1111 1111 1111, mail jane.doe@example.com"
    async with api.service.store.transaction() as tx:
        await tx.add_message(CallMessage(call.id, "user", said))
    for query in (f"group_by={group_by}", f"group_by={group_by}&format=csv"):
        response = await api.client.get(f"/usage?{query}", headers=api.auth())
        assert response.status == 200
        exported = await response.text()
        assert "4111" not in exported
        assert "jane" not in exported
        assert "201234567" not in exported  # the caller's number, however written
        assert call.id not in exported


@pytest.mark.parametrize(
    ("query", "status", "named"),
    [
        ("start_date=2026-13-01", 400, "start_date"),
        ("end_date=yesterday", 400, "end_date"),
        ("group_by=week", 400, "group_by"),
        ("format=xml", 400, "format"),
        ("limit=3", 400, "limit"),
        # Each date well formed, the range not (it was 422).
        ("start_date=2026-03-02&end_date=2026-03-01", 400, "start_date"),
        ("start_date=2026-01-01&end_date=2026-04-04", 400, "93 days"),
    ],
)
async def test_invalid_parameters_are_named(api: Api, query: str, status: int, named: str) -> None:
    response = await api.client.get(f"/usage?{query}", headers=api.auth())
    assert response.status == status
    body = await response.json()
    assert set(body) == {"error", "message"}
    assert named in body["message"]


async def test_the_longest_range_is_accepted(api: Api) -> None:
    # 2026-01-01 to 2026-04-03: 31 + 28 + 31 + 3 = 93 days, both included
    ok = await api.client.get(
        "/usage?start_date=2026-01-01&end_date=2026-04-03", headers=api.auth()
    )
    assert ok.status == 200


async def test_a_calls_usage_on_its_record(api: Api) -> None:
    call = await _insert(api, ACME, 4.2, 30)
    body = await (await api.client.get(f"/calls/{call.id}", headers=api.auth())).json()
    assert body["usage"] == {
        "connected_seconds": pytest.approx(4.2, abs=0.002),
        "billable_seconds": 5,
        "stt": [{"provider": "offline", "audio_seconds": 1.5}],
        "tts": [{"provider": "offline", "characters": 30}],
    }


async def test_usage_by_assistant_splits_a_squad_calls_seconds_between_its_members(
    api: Api,
) -> None:
    await _insert(api, ACME, 3.0, 5)  # the receptionist's own call: all of it
    call = await _insert(api, ACME, 10.0, 5)
    assert call.started_at is not None
    call.squad = CallSquad(
        members=[
            CallMember(name="receptionist", assistant_id=SUPPORT_ID),
            CallMember(name="billing", assistant_id="asst_billing"),
            CallMember(name="german"),  # a configuration of its own
        ]
    )
    said = [("receptionist", 0.5), ("billing", 4.0), ("billing", 6.0), ("german", 9.0)]
    async with api.service.store.transaction() as tx:
        await tx.update_call(call)
        for member, at in said:
            started = call.started_at + timedelta(seconds=at)
            await tx.add_message(
                CallMessage(call.id, "assistant", "Hello.", started_at=started, member=member)
            )
    body = await (await api.client.get("/usage?group_by=assistant", headers=api.auth())).json()
    groups = {g["key"]: g for g in body["groups"]}
    assert groups.keys() == {SUPPORT_ID, "asst_billing", None}
    # The calls stay their assistant's; the seconds each assistant had are split.
    assert groups[SUPPORT_ID]["calls"] == 2
    assert groups[SUPPORT_ID]["connected_seconds"] == pytest.approx(13.0, abs=0.002)
    assert groups[SUPPORT_ID]["assistant_seconds"] == pytest.approx(3.0 + 4.0, abs=0.002)
    assert groups["asst_billing"]["calls"] == 0
    assert groups["asst_billing"]["assistant_seconds"] == pytest.approx(5.0, abs=0.002)
    assert groups[None]["assistant_seconds"] == pytest.approx(1.0, abs=0.002)
    by_day = await (await api.client.get("/usage", headers=api.auth())).json()
    assert "assistant_seconds" not in by_day["groups"][0]
