"""The web console's session through the real app: an API key exchanged for an HttpOnly,
SameSite=Strict cookie that the REST API accepts, state changes only with the CSRF token,
sign-out, revocation ending the session, and the console's own files served locally."""

from __future__ import annotations

import pytest

from api.conftest import Api
from api.contract import is_valid, statuses
from fakes.world import ACME, DESTINATION, SUPPORT_ID
from voicedock.api.api_keys import issue_api_key, revoke_api_key
from voicedock.api.authentication import hash_key
from voicedock.domain.records import KeyScope

pytestmark = pytest.mark.unit


async def sign_in(api: Api, key: str) -> dict[str, str]:
    resp = await api.client.post("/console/session", json={"api_key": key})
    assert resp.status == 200, await resp.text()
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/" in cookie
    assert key not in cookie  # an opaque token, not the key
    body = await resp.json()
    assert key not in str(body)
    return {"X-CSRF-Token": body["csrf_token"]}


async def test_the_cookie_stands_in_for_the_key_and_changes_need_the_csrf_token(api: Api) -> None:
    csrf = await sign_in(api, api.acme_key)
    assert (await api.client.get("/calls")).status == 200  # cookie only
    session = await (await api.client.get("/console/session")).json()
    assert session["csrf_token"] == csrf["X-CSRF-Token"]
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    forged = await api.client.post("/calls/outbound", json=body)
    assert forged.status == 403  # a cross-site page has the cookie, never the token
    placed = await api.client.post("/calls/outbound", json=body, headers=csrf)
    assert placed.status == 200, await placed.text()
    call_id = (await placed.json())["call_id"]
    events = await api.client.get(f"/calls/{call_id}/events")  # what EventSource does
    assert events.status == 200
    events.close()
    out = await api.client.delete("/console/session")
    assert out.status == 403  # signing out needs the token too
    out = await api.client.delete("/console/session", headers=csrf)
    assert out.status == 204
    assert (await api.client.get("/calls")).status == 401


async def test_revoking_the_key_ends_its_console_session(api: Api) -> None:
    key, _ = await issue_api_key(api.service.store, ACME, "laptop")
    await sign_in(api, key)
    assert (await api.client.get("/calls")).status == 200
    stored = await api.service.store.find_api_key(hash_key(key))
    assert stored is not None
    await revoke_api_key(api.service.store, stored)
    assert (await api.client.get("/calls")).status == 401
    refused = await api.client.post("/console/session", json={"api_key": key})
    assert refused.status == 401


async def test_a_read_only_session_reads_but_cannot_control(api: Api) -> None:
    key, _ = await issue_api_key(api.service.store, ACME, "wall", KeyScope.READ_ONLY)
    csrf = await sign_in(api, key)
    assert (await api.client.get("/calls")).status == 200
    body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
    assert (await api.client.post("/calls/outbound", json=body, headers=csrf)).status == 403


async def test_sign_in_takes_json_only_and_files_are_served_locally(api: Api) -> None:
    form = await api.client.post("/console/session", data={"api_key": api.acme_key})
    assert form.status == 415  # an HTML form from another site cannot sign anyone in
    page = await api.client.get("/console")
    assert page.status == 200
    html = await page.text()
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "http://" not in html
    assert "https://" not in html  # nothing loaded from elsewhere
    for name in ("console.js", "console.css"):
        asset = await api.client.get(f"/console/{name}")
        assert asset.status == 200
        assert "https://" not in await asset.text()
    assert (await api.client.get("/console/..%2fpyproject.toml")).status == 404
    assert (await api.client.get("/console/nope.js")).status == 404


async def test_sign_in_documents_what_it_answers(api: Api) -> None:
    """{} is schema-invalid (api_key is required), and the 415 of a form is documented."""
    assert not is_valid({}, "ConsoleSignIn")
    empty = await api.client.post("/console/session", json={})
    assert empty.status == 400
    assert {400, 401, 413, 415} <= statuses("/console/session", "post")
    bare = await api.client.post("/console/session", skip_auto_headers=["Content-Type"])
    assert bare.status == 415
    assert (await bare.json())["error"] == "Unsupported media type"
