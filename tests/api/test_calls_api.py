"""Contract tests of the documented /calls endpoints (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from api.conftest import Api
from api.contract import DOCUMENT, conforms, is_valid, parameter
from fakes.world import ACME_NUMBERS, DESTINATION, GLOBEX_NUMBER, SUPPORT_ID, number_id
from voicedock.errors import PbxUnavailable

pytestmark = pytest.mark.unit

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
SEED_LIST_FIELDS = [
    "id", "caller_phone", "assistant_phone", "status", "error", "started_at", "ended_at",
    "duration_seconds", "summary", "agent_name", "business_name", "created_at", "updated_at",
]  # fmt: skip
SEED_DETAIL_FIELDS = [
    *SEED_LIST_FIELDS, "analysis_result", "messages", "agent_id", "number_id", "phone_number",
]  # fmt: skip


async def post_outbound(api: Api, body: Any, key: str | None = None, **headers: str) -> Any:
    return await api.client.post("/calls/outbound", json=body, headers={**api.auth(key), **headers})


async def place(api: Api, **extra: Any) -> str:
    resp = await post_outbound(
        api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID, **extra}
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    return str(body["call_id"])


async def test_outbound_documented_response(api: Api) -> None:
    resp = await post_outbound(api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    assert resp.status == 200
    body = await resp.json()
    assert body["success"] is True
    assert body["status"] == "dialing"
    assert re.fullmatch(r"call-outbound-[A-Za-z0-9]+", body["call_id"])
    assert body["room_name"].startswith("outbound-")
    assert "Deprecation" not in resp.headers
    assert [o.call_id for o in api.pbx.originated] == [body["call_id"]]


BAD_DESTINATIONS = [
    "+31612345678&SIP/evil", "+3161234/5678", "+31612345678@evil", "+3161,2345678",
    "+31 612345678", "+3161234567a", "+31612345678\r\nAction: Originate", "+31612345678\x00",
    "+٣١٦١٢٣٤٥٦٧٨", "+３１６１２３４５６７８", "+316", "+3161234567890123", "31612345678",
    "", " ", "++31612345678", "+0612345678", "${SHELL(id)}", 31612345678, None, ["+31612345678"],
]  # fmt: skip


@pytest.mark.parametrize("destination", BAD_DESTINATIONS)
async def test_bad_destination_is_400_without_originate(api: Api, destination: Any) -> None:
    resp = await post_outbound(api, {"destination": destination, "assistant_id": SUPPORT_ID})
    assert resp.status == 400
    body = await resp.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "Invalid destination format"
    assert api.pbx.originated == []


BAD_BODIES = [
    {"destination": DESTINATION},  # no assistant
    {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "unknown": 1},
    {"destination": DESTINATION, "assistant_id": ""},
    {"destination": DESTINATION, "assistant_id": 12},
    {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "first_message": ""},
    {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "first_message": 5},
    {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "number_id": "a b"},
    {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "agent_id": SUPPORT_ID},
    {"destination": DESTINATION, "assistant_override": {"first_message": "x"}},
    {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "assistant": {"name": "x"}},
    {"destination": DESTINATION, "assistant": {"provider": "nope"}},
    {"destination": DESTINATION, "assistant": {"bogus": True}},
    {"destination": DESTINATION, "assistant": "not an object"},
    {  # a saved squad and an inline one (schemathesis found the document let it through)
        "destination": DESTINATION,
        "squad_id": "front-desk",
        "squad": {"members": [{"name": "desk", "assistant_id": SUPPORT_ID}]},
    },
    [DESTINATION],
    "text",
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_bad_outbound_bodies_are_400(api: Api, body: Any) -> None:
    resp = await post_outbound(api, body)
    assert resp.status == 400, await resp.text()
    assert set(await resp.json()) == {"error", "message"}
    assert api.pbx.originated == []
    if isinstance(body, dict):
        assert not is_valid(body, "OutboundCallRequest")


@pytest.mark.parametrize(
    "raw", [b"{", b"", b'{"destination": NaN}', b"\xff\xfe", b'{"a": 1, "a": 2}']
)
async def test_malformed_json_is_400(api: Api, raw: bytes) -> None:
    resp = await api.client.post(
        "/calls/outbound", data=raw, headers={**api.auth(), "Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "Invalid JSON"


async def test_oversized_body_is_413(api: Api) -> None:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "context": "x" * 70_000}
    resp = await post_outbound(api, body)
    assert resp.status == 413
    assert set(await resp.json()) == {"error", "message"}
    assert api.pbx.originated == []


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer wrong-key-000000000000", "bearer x"],
)
async def test_bad_auth_is_401(api: Api, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = await api.client.post("/calls/outbound", json={}, headers=headers)
    assert resp.status == 401
    assert (await resp.json())["error"] == "Invalid API key"


async def test_unknown_assistant_404_and_inactive_400(api: Api) -> None:
    resp = await post_outbound(api, {"destination": DESTINATION, "assistant_id": "nope"})
    assert resp.status == 404
    resp = await api.client.patch(
        f"/assistants/{SUPPORT_ID}", json={"active": False}, headers=api.auth()
    )
    assert resp.status == 200
    resp = await post_outbound(api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    assert resp.status == 400
    assert (await resp.json())["error"] == "Inactive assistant"


async def test_deprecated_aliases_are_flagged(api: Api) -> None:
    resp = await post_outbound(
        api,
        {
            "destination": DESTINATION,
            "agent_id": SUPPORT_ID,
            "agent_config": {"first_message": "Hoi"},
        },
    )
    assert resp.status == 200
    assert resp.headers["Deprecation"] == "true"
    assert "agent_id -> assistant_id" in resp.headers["Warning"]
    assert "agent_config -> assistant_override" in resp.headers["Warning"]
    assert 'rel="deprecation"' in resp.headers["Link"]
    call = await api.service.store.get_call(None, (await resp.json())["call_id"])
    assert call is not None
    assert call.first_message == "Hoi"


async def test_number_selection_lru_busy_and_isolation(api: Api) -> None:
    resp = await post_outbound(
        api,
        {
            "destination": DESTINATION,
            "assistant_id": SUPPORT_ID,
            "number_id": number_id(GLOBEX_NUMBER),
        },
    )
    assert resp.status == 404  # another organization's number
    first, second = await place(api), await place(api)
    phones = set()
    for call_id in (first, second):
        resp = await api.client.get(f"/calls/{call_id}", headers=api.auth())
        phones.add((await resp.json())["assistant_phone"])
    assert phones == set(ACME_NUMBERS)  # least recently used first: both numbers in turn
    resp = await post_outbound(api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    assert resp.status == 429
    assert "busy" in (await resp.json())["error"]


async def test_get_call_has_every_seed_field_and_org_isolation(api: Api) -> None:
    call_id = await place(api)
    await api.pbx.answer(call_id)
    await api.pbx.hang_up_remote(call_id)
    resp = await api.client.get(f"/calls/{call_id}", headers=api.auth())
    assert resp.status == 200
    body = await resp.json()
    assert list(body)[: len(SEED_DETAIL_FIELDS)] == SEED_LIST_FIELDS + SEED_DETAIL_FIELDS[13:]
    assert body["status"] == "ended"
    assert body["end_reason"] == "remote-hangup"
    assert body["phone_number"] == body["assistant_phone"]
    assert body["agent_id"] == SUPPORT_ID
    for key in ("started_at", "ended_at", "created_at", "updated_at"):
        assert ISO_Z.fullmatch(body[key]), key
    assert [e["data"]["to"] for e in body["events"] if e["type"] == "status"] == [
        "connecting",
        "in-progress",
        "ended",
    ]
    other = await api.client.get(f"/calls/{call_id}", headers=api.auth(api.globex_key))
    assert other.status == 404
    listed = await api.client.get("/calls", headers=api.auth(api.globex_key))
    assert (await listed.json())["calls"] == []
    missing = await api.client.get("/calls/call-outbound-missing", headers=api.auth())
    assert missing.status == 404
    assert set(await missing.json()) == {"error", "message"}


async def test_list_calls_filters_and_cursor(api: Api) -> None:
    first = await place(api)
    await api.pbx.hang_up_remote(first, 17, 486)
    second = await place(api)
    resp = await api.client.get("/calls", headers=api.auth())
    body = await resp.json()
    assert [c["id"] for c in body["calls"]] == [second, first]
    additions = ["campaign_id", "squad_id", "metadata", "scheduled_at", "latest_at", "cost"]
    assert list(body["calls"][0]) == [*SEED_LIST_FIELDS, *additions]
    assert body["pagination"] == {"total": 2, "limit": 100, "offset": 0}
    assert body["next_cursor"] is None
    failed = await (await api.client.get("/calls?status=failed", headers=api.auth())).json()
    assert [c["id"] for c in failed["calls"]] == [first]
    assert failed["calls"][0]["error"] == "busy"
    page = await (await api.client.get("/calls?limit=1", headers=api.auth())).json()
    assert [c["id"] for c in page["calls"]] == [second]
    cursor = page["next_cursor"]
    assert cursor
    rest = await (
        await api.client.get("/calls", params={"limit": "1", "cursor": cursor}, headers=api.auth())
    ).json()
    assert [c["id"] for c in rest["calls"]] == [first]
    future = await (
        await api.client.get(
            "/calls", params={"start_date": "2999-01-01T00:00:00Z"}, headers=api.auth()
        )
    ).json()
    assert future["calls"] == []


@pytest.mark.parametrize(
    "query",
    [
        "limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=١٠", "offset=-1",
        "status=done", "start_date=yesterday", "end_date=2025-13-45", "cursor=!!!",
        "bogus=1", "limit=1&limit=2",
    ],
)  # fmt: skip
async def test_list_calls_bad_query_is_400(api: Api, query: str) -> None:
    resp = await api.client.get(f"/calls?{query}", headers=api.auth())
    assert resp.status == 400
    assert set(await resp.json()) == {"error", "message"}


async def test_idempotency_over_http(api: Api) -> None:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    responses = await asyncio.gather(
        *(post_outbound(api, body, **{"Idempotency-Key": "abc-1"}) for _ in range(4))
    )
    bodies = [await r.json() for r in responses]
    assert {r.status for r in responses} == {200}
    assert len({b["call_id"] for b in bodies}) == 1
    assert len(api.pbx.originated) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 3
    other = await post_outbound(
        api, {**body, "first_message": "different"}, **{"Idempotency-Key": "abc-1"}
    )
    assert other.status == 422
    assert len(api.pbx.originated) == 1


async def test_pbx_unavailable_is_503_and_recorded(api: Api) -> None:
    api.pbx.fail_next_originate = PbxUnavailable("down")
    resp = await post_outbound(
        api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID}, **{"Idempotency-Key": "k"}
    )
    assert resp.status == 503
    body = await resp.json()
    assert body["error"] == "PBX unavailable"
    detail = await (await api.client.get(f"/calls/{body['call_id']}", headers=api.auth())).json()
    assert detail["status"] == "failed"
    assert detail["error"] == "pbx-unavailable"
    replay = await post_outbound(
        api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID}, **{"Idempotency-Key": "k"}
    )
    assert replay.status == 503
    assert await replay.json() == body


async def test_blocked_destination_is_403(api: Api) -> None:
    resp = await post_outbound(api, {"destination": "+8823421234", "assistant_id": SUPPORT_ID})
    assert resp.status == 403
    assert api.pbx.originated == []


@pytest.mark.parametrize(
    ("destination", "status", "error"),
    [
        ("+18762101234", 403, "Destination not allowed"),  # Jamaica: not an allowed country
        ("+319001234567", 403, "Destination not allowed"),  # NL premium rate
        ("+9009011234567", 400, "Invalid destination format"),  # no such range in Turkey
        ("+316123456789012", 400, "Invalid destination format"),  # too long for NL
    ],
)
async def test_refused_and_impossible_destinations_never_reach_the_pbx(
    api: Api, destination: str, status: int, error: str
) -> None:
    resp = await post_outbound(api, {"destination": destination, "assistant_id": SUPPORT_ID})
    body = await resp.json()
    assert (resp.status, body["error"]) == (status, error)
    assert destination not in body["message"]
    assert api.pbx.originated == []


async def test_unknown_path_and_method(api: Api) -> None:
    resp = await api.client.get("/nope", headers=api.auth())
    assert resp.status == 404
    assert set(await resp.json()) == {"error", "message"}
    resp = await api.client.delete("/calls", headers=api.auth())
    assert resp.status == 405
    assert (await resp.json())["error"] == "Method not allowed"


async def test_get_calls_outbound_is_405_allowing_post(api: Api) -> None:
    """ "outbound" is no call id: the Allow header names only the documented POST."""
    resp = await api.client.get("/calls/outbound", headers=api.auth())
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert set(DOCUMENT["paths"]["/calls/outbound"]) == {"post"}


async def test_list_bounds_are_documented(api: Api) -> None:
    """offset up to its documented maximum is a page (1,000,000,000 was a 400); a cursor
    outside the documented pattern is a 400, one inside it a page."""
    bound = parameter("/calls", "get", "offset")["schema"]["maximum"]
    ok = await api.client.get("/calls", params={"offset": str(bound)}, headers=api.auth())
    assert ok.status == 200
    pattern = re.compile(parameter("/calls", "get", "cursor")["schema"]["pattern"])
    for cursor in ("", "1765620000000000.1", "0.0"):
        assert pattern.search(cursor)
        page = await api.client.get("/calls", params={"cursor": cursor}, headers=api.auth())
        assert page.status == 200
    for cursor in ("tX", "MTIzNA", "1.2.3"):
        assert not pattern.search(cursor)
        page = await api.client.get("/calls", params={"cursor": cursor}, headers=api.auth())
        assert page.status == 400


@pytest.mark.parametrize(
    "body",
    [
        {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "agent_id": SUPPORT_ID},
        {"destination": DESTINATION, "assistant": {"name": "T"}, "assistant_override": {}},
        {"destination": DESTINATION, "assistant_id": SUPPORT_ID, "assistant": {"name": "T"}},
        {"destination": DESTINATION},
        {"destination": DESTINATION, "assistant_id": None, "assistant": {"name": "T"}},
    ],
)
async def test_outbound_assistant_rules_are_in_the_schema(api: Api, body: dict[str, Any]) -> None:
    """Each body the API refuses for how it names its assistant, the schema forbids."""
    assert not is_valid(body, "OutboundCallRequest")
    resp = await api.client.post("/calls/outbound", json=body, headers=api.auth())
    assert resp.status == 400


def test_outbound_assistant_modes_are_schema_valid() -> None:
    for body in (
        {"destination": DESTINATION, "assistant_id": SUPPORT_ID},
        {"destination": DESTINATION, "agent_id": SUPPORT_ID, "assistant_override": {}},
        {"destination": DESTINATION, "assistant": {"name": "T"}, "context": "x" * 20_000},
    ):
        conforms(body, "OutboundCallRequest")


@pytest.mark.filterwarnings("ignore::voicedock.store.postgres.store.PoolDeadlockWarning")
async def test_many_calls_placed_at_once_are_each_answered(api: Api) -> None:
    """More placements at once than the database pool has connections, all on one
    organization's numbers (each locks them while it reserves one): every request is
    answered. On PostgreSQL a placement that read the organization on a second connection
    while holding the numbers' locks waited for ever, with every connection held by the
    placements waiting for those locks (the guard that warns of such a read is silenced here:
    this checks what a client sees)."""

    async def one() -> int:
        resp = await post_outbound(api, {"destination": DESTINATION, "assistant_id": SUPPORT_ID})
        return resp.status

    async with asyncio.timeout(30):
        statuses = await asyncio.gather(*(one() for _ in range(24)))
    assert set(statuses) <= {200, 429}, statuses
    placed = statuses.count(200)
    assert placed, statuses
    listed = await (await api.client.get("/calls?limit=100", headers=api.auth())).json()
    assert len(listed["calls"]) == placed
