"""What every REST resource shares (api/resources.py), driven through the app as a client:
another organization's record is the same 404 as none, paged lists keep their bounds, an
idempotent create replays its answer, and a resource's key scope is enforced. Run on SQLite
and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from api.conftest import Api
from fakes.world import ACME, DESTINATION, SUPPORT_ID
from voicedock.api.api_keys import issue_api_key
from voicedock.api.body import MAX_OFFSET
from voicedock.api.resources import Caller, capped, stored
from voicedock.domain.records import ApiKey, KeyScope
from voicedock.errors import Conflict

pytestmark = pytest.mark.unit

TOOL = {
    "type": "webhook",
    "name": "lookup_order",
    "description": "Find an order by its number.",
    "parameters": {"type": "object", "properties": {"number": {"type": "string"}}},
}
# A resource, the body that creates one, a PATCH body, and its 404 title.
CREATED = [
    ("/assistants", {"name": "Layer"}, {"name": "Renamed"}, "Assistant not found"),
    ("/tool-templates", TOOL, TOOL, "Tool template not found"),
    ("/analysis-templates", {"name": "Layer"}, {"name": "Renamed"}, "Analysis template not found"),
    ("/agents", {"name": "Layer"}, {"name": "Renamed"}, "Assistant not found"),
    ("/webhooks", {"url": "https://93.184.216.34/hooks"}, None, "Webhook not found"),
]


async def _create(api: Api, path: str, body: dict[str, Any]) -> str:
    response = await api.client.post(path, json=body, headers=api.auth())
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


@pytest.mark.every_backend  # its cases query the store each its own way
@pytest.mark.parametrize(("path", "body", "patch", "title"), CREATED)
async def test_another_organizations_record_is_the_same_404_as_none(
    api: Api, path: str, body: dict[str, Any], patch: dict[str, Any] | None, title: str
) -> None:
    record_id = await _create(api, path, body)
    globex = api.auth(api.globex_key)
    for target in (f"{path}/{record_id}", f"{path}/00000000-no-such-id", f"{path}/not%20an%20id"):
        requests = [("GET", None), ("DELETE", None)]
        if patch is not None:
            requests.append(("PATCH", patch))
        for method, sent in requests:
            response = await api.client.request(method, target, json=sent, headers=globex)
            assert response.status == 404, (method, target)
            answer = await response.json()
            assert answer["error"] == title
            assert answer["message"].startswith("no ")
    # Nothing of it was listed for, changed or deleted by the other organization.
    listed = await (await api.client.get(path, headers=globex)).json()
    assert record_id not in [item["id"] for item in next(iter(listed.values()))]
    mine = await api.client.get(f"{path}/{record_id}", headers=api.auth())
    assert mine.status == 200
    assert (await mine.json())["id"] == record_id


@pytest.mark.parametrize("path", ["/calls", "/campaigns"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        # The bounds are the list's query model's (named as the model's field).
        ("limit=0", "query.limit: expected `int` >= 1"),
        ("limit=1001", "query.limit: expected `int` <= 1000"),
        ("limit=ten", "query.limit: expected `int`, got `str`"),
        ("offset=-1", "query.offset: expected `int` >= 0"),
        (f"offset={MAX_OFFSET + 1}", f"query.offset: expected `int` <= {MAX_OFFSET}"),
        ("limit=5&limit=6", "each query parameter may appear only once"),
        ("page=2", "unknown query parameter(s): page"),
    ],
)
async def test_paged_lists_keep_their_bounds(api: Api, path: str, query: str, message: str) -> None:
    response = await api.client.get(f"{path}?{query}", headers=api.auth())
    assert response.status == 400
    assert await response.json() == {"error": "Bad request", "message": message}


@pytest.mark.every_backend  # its cases query the store each its own way
@pytest.mark.parametrize("path", ["/calls", "/campaigns"])
async def test_paged_lists_echo_their_bounds(api: Api, path: str) -> None:
    default = await (await api.client.get(path, headers=api.auth())).json()
    assert default["pagination"] == {"total": 0, "limit": 100, "offset": 0}
    edge = f"{path}?limit=1000&offset={MAX_OFFSET}"
    bounds = await (await api.client.get(edge, headers=api.auth())).json()
    assert bounds["pagination"] == {"total": 0, "limit": 1000, "offset": MAX_OFFSET}


async def test_cursor_pages_end_with_a_null_cursor(api: Api) -> None:
    placed = set()
    for _ in range(3):
        response = await api.client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
            headers=api.auth(),
        )
        assert response.status == 200, await response.text()
        call_id = (await response.json())["call_id"]
        await api.pbx.hang_up_remote(call_id, 17, 486)  # busy: the number is free again
        placed.add(call_id)
    first = await (await api.client.get("/calls?limit=2", headers=api.auth())).json()
    assert len(first["calls"]) == 2
    assert first["pagination"] == {"total": 3, "limit": 2, "offset": 0}
    assert first["next_cursor"]
    cursor = first["next_cursor"]
    second = await (
        await api.client.get(f"/calls?limit=2&cursor={cursor}", headers=api.auth())
    ).json()
    assert len(second["calls"]) == 1
    assert second["next_cursor"] is None
    assert {c["id"] for c in first["calls"] + second["calls"]} == placed


async def test_an_idempotent_create_replays_its_answer(api: Api) -> None:
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    key = {"Idempotency-Key": "layer-1"}
    first = await api.client.post("/calls/outbound", json=body, headers={**api.auth(), **key})
    assert first.status == 200
    assert "Idempotent-Replayed" not in first.headers
    again = await api.client.post("/calls/outbound", json=body, headers={**api.auth(), **key})
    assert again.status == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert len(api.pbx.originated) == 1
    # The same key with another body is refused; a key that is no key is a 400.
    other = await api.client.post(
        "/calls/outbound", json={**body, "first_message": "Hi"}, headers={**api.auth(), **key}
    )
    assert other.status == 422
    assert (await other.json())["error"] == "Idempotency key reused"
    bad = await api.client.post(
        "/calls/outbound", json=body, headers={**api.auth(), "Idempotency-Key": "two words"}
    )
    assert bad.status == 400
    assert (await bad.json())["message"] == (
        "Idempotency-Key must be 1-255 printable ASCII characters"
    )
    listed = await (await api.client.get("/calls", headers=api.auth())).json()
    assert listed["pagination"]["total"] == 1


async def test_a_resources_key_scope_is_enforced(api: Api) -> None:
    store = api.service.store
    reader, _ = await issue_api_key(store, ACME, "wallboard", KeyScope.READ_ONLY)
    admin, _ = await issue_api_key(store, ACME, "ops", KeyScope.ADMIN)
    # A read-only key reads every resource and writes none.
    assert (await api.client.get("/assistants", headers=api.auth(reader))).status == 200
    refused = await api.client.post("/assistants", json={"name": "x"}, headers=api.auth(reader))
    assert refused.status == 403
    assert (await refused.json())["message"] == "this API key is read-only"
    # /api-keys (and every path below it) needs an admin key, whatever the method.
    for key in (api.acme_key, reader):
        for method, target in (
            ("GET", "/api-keys"),
            ("GET", "/api-keys/any"),
            ("POST", "/api-keys"),
        ):
            response = await api.client.request(method, target, json={}, headers=api.auth(key))
            assert response.status == 403, (method, target)
            assert await response.json() == {
                "error": "Forbidden",
                "message": (
                    "this API key is read-only"
                    if key == reader and method == "POST"
                    else "managing API keys needs an admin API key"
                ),
            }
    assert (await api.client.get("/api-keys", headers=api.auth(admin))).status == 200
    # Nothing was created by the refused requests.
    listed = await (await api.client.get("/api-keys", headers=api.auth(admin))).json()
    assert sorted(k["name"] for k in listed["api_keys"]) == ["", "ops", "wallboard"]
    assistants = await (await api.client.get("/assistants", headers=api.auth())).json()
    assert "x" not in [a["name"] for a in assistants["assistants"]]


@pytest.mark.parametrize(
    ("method", "target", "allowed"),
    [
        ("PUT", "/assistants/some-id", {"GET", "PATCH", "DELETE"}),
        ("PUT", "/webhooks", {"GET", "POST"}),
        ("GET", "/calls/outbound", {"POST"}),
    ],
)
async def test_a_method_a_resource_lacks_is_405_with_what_it_has(
    api: Api, method: str, target: str, allowed: set[str]
) -> None:
    response = await api.client.request(method, target, headers=api.auth())
    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) - {"HEAD"} == allowed
    assert (await response.json())["error"] == "Method not allowed"


async def test_a_capped_create_refuses_once_the_organization_has_the_most(api: Api) -> None:
    """``capped``: the organization's count is read before the write; at the cap, 409."""
    written: list[object] = []

    async def write(_tx: object, record: object) -> None:
        written.append(record)

    async def count(caller: Caller) -> int:
        return len(written)

    @dataclass(frozen=True)
    class Thing:  # a stored record: found by its id
        id: str

    run = capped(count, 2, "things", stored(write))
    key = ApiKey(id="k", organization_id=ACME, name="", key_hash="h")
    caller = Caller(api.service, ACME, key)
    assert await run(caller, Thing("first")) == Thing("first")
    assert await run(caller, Thing("second")) == Thing("second")
    with pytest.raises(Conflict, match="at most 2 things"):
        await run(caller, Thing("third"))
    assert written == [Thing("first"), Thing("second")]
