"""API keys through the real app: managed with an admin key over ``/api-keys``, read-only
keys refused on every change, the placing key recorded on the call, and revocation effective
at once, also for an event stream that is already open."""

from __future__ import annotations

import asyncio

import pytest

from api.conftest import Api
from fakes.world import ACME, DESTINATION, SUPPORT_ID
from voicedock.api.api_keys import issue_api_key
from voicedock.domain.records import KeyScope

pytestmark = pytest.mark.unit


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def created_key(api: Api, name: str) -> dict[str, str]:
    """A full key made through /api-keys by an admin key: its id and its secret (``key``)."""
    admin, _ = await issue_api_key(api.service.store, ACME, "ops", KeyScope.ADMIN)
    resp = await api.client.post("/api-keys", json={"name": name}, headers=bearer(admin))
    assert resp.status == 201
    return {**(await resp.json()), "admin": admin}


async def place_with(api: Api, key: str) -> str:
    placed = await api.client.post(
        "/calls/outbound",
        json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
        headers=bearer(key),
    )
    assert placed.status == 200
    return str((await placed.json())["call_id"])


async def test_an_admin_key_lists_creates_renames_and_revokes_keys(api: Api) -> None:
    admin, _ = await issue_api_key(api.service.store, ACME, "ops", KeyScope.ADMIN)
    created = await api.client.post(
        "/api-keys", json={"name": "grafana", "scope": "read_only"}, headers=bearer(admin)
    )
    assert created.status == 201, await created.text()
    body = await created.json()
    secret, key_id = body["key"], body["id"]
    assert secret.startswith("vd_")
    assert body["scope"] == "read_only"
    assert body["revoked_at"] is None

    listed = await (await api.client.get("/api-keys", headers=bearer(admin))).json()
    assert {k["name"] for k in listed["api_keys"]} == {"", "ops", "grafana"}
    text = str(listed)
    assert secret not in text
    assert "hash" not in text  # neither the secret nor its hash is ever listed
    # Another organization's admin sees none of acme's keys.
    globex_admin, _ = await issue_api_key(api.service.store, "globex", "g", KeyScope.ADMIN)
    theirs = await (await api.client.get("/api-keys", headers=bearer(globex_admin))).json()
    assert key_id not in {k["id"] for k in theirs["api_keys"]}
    hidden = await api.client.delete(f"/api-keys/{key_id}", headers=bearer(globex_admin))
    assert hidden.status == 404

    renamed = await api.client.patch(
        f"/api-keys/{key_id}", json={"name": "prometheus"}, headers=bearer(admin)
    )
    assert (await renamed.json())["name"] == "prometheus"

    assert (await api.client.get("/calls", headers=bearer(secret))).status == 200
    revoked = await api.client.delete(f"/api-keys/{key_id}", headers=bearer(admin))
    assert revoked.status == 200
    assert (await revoked.json())["revoked_at"] is not None
    after = await api.client.get("/calls", headers=bearer(secret))
    assert after.status == 401
    assert (await after.json())["error"] == "Invalid API key"


async def test_only_admin_keys_manage_keys(api: Api) -> None:
    for scope in (KeyScope.FULL, KeyScope.READ_ONLY):
        key, _ = await issue_api_key(api.service.store, ACME, scope.value, scope)
        resp = await api.client.get("/api-keys", headers=bearer(key))
        assert resp.status == 403, scope
        assert (await resp.json())["error"] == "Forbidden"


async def test_a_read_only_key_reads_but_never_places_or_controls_calls(api: Api) -> None:
    call_id = await place_with(api, api.acme_key)
    reader, _ = await issue_api_key(api.service.store, ACME, "wallboard", KeyScope.READ_ONLY)
    assert (await api.client.get("/calls", headers=bearer(reader))).status == 200
    assert (await api.client.get(f"/calls/{call_id}", headers=bearer(reader))).status == 200
    refused = [
        await api.client.post(
            "/calls/outbound",
            json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
            headers=bearer(reader),
        ),
        await api.client.post(
            f"/calls/{call_id}/control", json={"type": "end-call"}, headers=bearer(reader)
        ),
        await api.client.post("/assistants", json={"name": "x"}, headers=bearer(reader)),
    ]
    assert [r.status for r in refused] == [403, 403, 403]
    assert (await refused[0].json())["message"] == "this API key is read-only"
    calls = await (await api.client.get("/calls", headers=bearer(reader))).json()
    assert [c["id"] for c in calls["calls"]] == [call_id]  # nothing else was placed


async def test_the_key_that_placed_a_call_is_recorded_on_it(api: Api) -> None:
    created = await created_key(api, "crm")
    call_id = await place_with(api, created["key"])
    detail = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert detail["api_key_id"] == created["id"]


async def test_revoking_a_key_ends_its_open_event_stream(api: Api) -> None:
    watcher = await created_key(api, "watcher")
    admin = watcher["admin"]
    call_id = await place_with(api, api.acme_key)
    stream = await api.client.get(f"/calls/{call_id}/events", headers=bearer(watcher["key"]))
    assert stream.status == 200
    first = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
    assert first.startswith(b"retry:")
    await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)  # the "connecting" status
    revoked = await api.client.delete(f"/api-keys/{watcher['id']}", headers=bearer(admin))
    assert revoked.status == 200
    # The call is still connecting, so only the revocation can end the stream.
    async with asyncio.timeout(5):
        rest = await stream.read()
    assert b"ended" not in rest
    assert (await api.client.get(f"/calls/{call_id}", headers=api.auth())).status == 200
    status = await (await api.client.get(f"/calls/{call_id}", headers=api.auth())).json()
    assert status["status"] == "connecting"
    again = await api.client.get(f"/calls/{call_id}/events", headers=bearer(watcher["key"]))
    assert again.status == 401
