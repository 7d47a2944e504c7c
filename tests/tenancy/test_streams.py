"""Open event streams, console sessions and the access log, as client organizations use them
on the real service (the example configuration on the lab Asterisk).

* One read-only key cannot take every event stream of the node: each key and each
  organization has its own cap (``[limits] open_streams_per_key`` /
  ``open_streams_per_organization``); over it the stream is refused with 429, the documented
  error body and ``Retry-After``, while another organization still gets its stream, and a
  stream the client closes frees its place.
* Signing out of the console ends the session's open streams (as revoking its key does).
* The console's cookie is ``__Host-`` prefixed, ``Secure``, ``Path=/`` and has no ``Domain``.
* The access log never carries a caller's full number (inbound call ids embed it; so does
  ``DELETE /do-not-call/{number}``).
"""

from __future__ import annotations

import asyncio
import logging
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp import ClientResponse

from fakes.world import assistant_id, org_id
from pbx.lab_calls import NO_ANSWER
from tenancy.conftest import (
    GLOBEX_LINE,
    ORGANIZATION,
    OTHER_ORGANIZATION,
    Tenants,
    give_globex_a_number,
)
from voicedock.api.api_keys import issue_api_key
from voicedock.config import Settings
from voicedock.domain.records import KeyScope

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

ACME_ASSISTANT = assistant_id(ORGANIZATION, "Customer Support")
GLOBEX_ASSISTANT = assistant_id(OTHER_ORGANIZATION, GLOBEX_LINE)


@pytest.fixture
def tenant_settings(tenant_settings: Settings) -> Settings:
    """The example, with small stream caps and a number of globex's own to call from."""
    tenant_settings.limits.open_streams_per_key = 2
    tenant_settings.limits.open_streams_per_organization = 3
    give_globex_a_number(tenant_settings)
    return tenant_settings


async def ringing_call(tenants: Tenants, headers: dict[str, str], assistant: str) -> str:
    """A call that rings (nobody answers) for a while: live, so its stream stays open."""
    client = tenants.service.client
    body = {"destination": NO_ANSWER, "assistant_id": assistant, "ring_timeout_seconds": 60}
    resp = await client.post("/calls/outbound", json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["call_id"])


async def end_call(tenants: Tenants, call_id: str, headers: dict[str, str]) -> None:
    resp = await tenants.service.client.post(
        f"/calls/{call_id}/control", json={"type": "end-call"}, headers=headers
    )
    assert resp.status in (200, 409), await resp.text()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def open_stream(tenants: Tenants, call_id: str, headers: dict[str, str]) -> ClientResponse:
    return await tenants.service.client.get(f"/calls/{call_id}/events", headers=headers)


async def refused_for_too_many_streams(resp: ClientResponse) -> dict[str, Any]:
    assert resp.status == 429, resp.status
    body: dict[str, Any] = await resp.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "Too many streams"
    assert int(resp.headers["Retry-After"]) >= 1
    return body


async def stream_ends(resp: ClientResponse, within: float) -> bool:
    """Whether the server ends ``resp``'s stream within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await resp.content.readany():
                pass
    except TimeoutError:
        return False
    return True


async def test_one_key_cannot_take_every_stream_and_other_organizations_still_stream(
    tenants: Tenants, streams: list[ClientResponse]
) -> None:
    acme = tenants.service.auth()
    wall, _ = await issue_api_key(
        tenants.service.service.store, ORGANIZATION, "wallboard", KeyScope.READ_ONLY
    )
    acme_call = await ringing_call(tenants, acme, ACME_ASSISTANT)
    globex_call = await ringing_call(tenants, tenants.as_other(), GLOBEX_ASSISTANT)
    try:
        # The read-only key opens its cap (2) ...
        for _ in range(2):
            streams.append(await open_stream(tenants, acme_call, bearer(wall)))
            assert streams[-1].status == 200
        # ... and no more.
        body = await refused_for_too_many_streams(
            await open_stream(tenants, acme_call, bearer(wall))
        )
        assert "API key" in body["message"]
        # Another key of the organization gets the organization's last place (3) ...
        streams.append(await open_stream(tenants, acme_call, acme))
        assert streams[-1].status == 200
        body = await refused_for_too_many_streams(await open_stream(tenants, acme_call, acme))
        assert "organization" in body["message"]
        # ... while another organization still streams its own call.
        streams.append(await open_stream(tenants, globex_call, tenants.as_other()))
        assert streams[-1].status == 200
        # A stream the client closes gives its place back.
        streams.pop(0).close()
        async with asyncio.timeout(5):
            while (again := await open_stream(tenants, acme_call, bearer(wall))).status == 429:
                again.close()
                await asyncio.sleep(0.1)
        streams.append(again)
        assert again.status == 200
    finally:
        await end_call(tenants, acme_call, acme)
        await end_call(tenants, globex_call, tenants.as_other())
    # The calls ended: every stream ends, and every place is free again.
    for resp in streams:
        assert await stream_ends(resp, within=10)
    service = tenants.service.service
    async with asyncio.timeout(5):
        while service.event_streams.open:
            await asyncio.sleep(0.05)
    async with service.store.transaction() as tx:
        now = await tx.clock()
        for organization in (ORGANIZATION, OTHER_ORGANIZATION):
            counts = await tx.count_event_streams(org_id(organization), "", now)
            assert counts.organization == 0


async def sign_in(tenants: Tenants) -> tuple[str, str, str]:
    """Sign in to the console with acme's key: (cookie name, cookie value, CSRF token)."""
    resp = await tenants.service.client.post(
        "/console/session", json={"api_key": tenants.service.key}
    )
    assert resp.status == 200, await resp.text()
    cookie = SimpleCookie()
    cookie.load(resp.headers["Set-Cookie"])
    ((name, morsel),) = cookie.items()
    return name, morsel.value, (await resp.json())["csrf_token"]


async def test_the_console_cookie_is_host_only_and_secure(tenants: Tenants) -> None:
    resp = await tenants.service.client.post(
        "/console/session", json={"api_key": tenants.service.key}
    )
    assert resp.status == 200, await resp.text()
    cookie = SimpleCookie()
    cookie.load(resp.headers["Set-Cookie"])
    ((name, morsel),) = cookie.items()
    assert name == "__Host-voicedock_session"
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["path"] == "/"
    assert not morsel["domain"]
    assert morsel["samesite"] == "Strict"
    # What a browser sends back is accepted; the unprefixed name (which another host could
    # have set) is not.
    as_browser = {"Cookie": f"{name}={morsel.value}"}
    assert (await tenants.service.client.get("/calls", headers=as_browser)).status == 200
    tossed = {"Cookie": f"voicedock_session={morsel.value}"}
    assert (await tenants.service.client.get("/calls", headers=tossed)).status == 401


async def test_signing_out_ends_the_sessions_streams(tenants: Tenants) -> None:
    name, value, csrf = await sign_in(tenants)
    as_browser = {"Cookie": f"{name}={value}"}
    call_id = await ringing_call(tenants, tenants.service.auth(), ACME_ASSISTANT)
    try:
        stream = await open_stream(tenants, call_id, as_browser)  # what EventSource does
        assert stream.status == 200
        other = await open_stream(tenants, call_id, tenants.service.auth())  # not the session's
        assert other.status == 200
        assert not await stream_ends(stream, within=1.5)  # a live call's stream stays open
        out = await tenants.service.client.delete(
            "/console/session", headers={**as_browser, "X-CSRF-Token": csrf}
        )
        assert out.status == 204
        assert await stream_ends(stream, within=5)
        assert not await stream_ends(other, within=1.5)  # the key's own stream goes on
        reconnect = await open_stream(tenants, call_id, as_browser)
        assert reconnect.status == 401
        other.close()
    finally:
        await end_call(tenants, call_id, tenants.service.auth())


async def test_the_access_log_masks_phone_numbers(
    tenants: Tenants, caplog: pytest.LogCaptureFixture
) -> None:
    acme = tenants.service.auth()
    number = "+31612345678"
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    client = tenants.service.client
    inbound_id = f"call-_{number}_Ab3dEf9hJk2m"  # the shape of an inbound call's id
    assert (await client.get(f"/calls/{inbound_id}", headers=acme)).status == 404
    resp = await client.post("/do-not-call", json={"number": number}, headers=acme)
    assert resp.status == 201, await resp.text()
    assert (await client.delete("/do-not-call/%2B31612345678", headers=acme)).status == 200
    resp = await client.get(f"/calls?destination={number}&caller=%2B31612345678", headers=acme)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) >= 4, lines
    logged = "\n".join(lines)
    assert "do-not-call" in logged  # the requests are logged ...
    assert "31612345678" not in logged  # ... never the whole number
    assert "+316***78" in logged
