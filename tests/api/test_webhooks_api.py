"""``/webhooks``: create (secret once, SSRF-checked URL), list, get, delete, per organization."""

from __future__ import annotations

import pytest

from api.conftest import Api
from fakes.world import GLOBEX_ASSISTANT_ID, SUPPORT_ID
from voicedock.domain.webhooks import decode_secret

pytestmark = pytest.mark.unit


async def test_create_list_get_delete(api: Api) -> None:
    h = api.auth()
    resp = await api.client.post(
        "/webhooks",
        json={
            "url": "https://93.184.216.34/hooks",
            "assistant_id": SUPPORT_ID,
            "event_types": ["end-of-call-report", "status-update"],
        },
        headers=h,
    )
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    assert created["secret"].startswith("whsec_")
    assert len(decode_secret(created["secret"])) >= 24
    assert created["event_types"] == ["status-update", "end-of-call-report"]
    assert created["assistant_id"] == SUPPORT_ID
    assert created["enabled"] is True
    wid = created["id"]
    listed = await (await api.client.get("/webhooks", headers=h)).json()
    assert [w["id"] for w in listed["webhooks"]] == [wid]
    assert "secret" not in listed["webhooks"][0]  # shown once, at creation
    got = await (await api.client.get(f"/webhooks/{wid}", headers=h)).json()
    assert got["url"] == "https://93.184.216.34/hooks"
    assert "secret" not in got
    other = api.auth(api.globex_key)
    assert (await api.client.get(f"/webhooks/{wid}", headers=other)).status == 404
    assert (await api.client.delete(f"/webhooks/{wid}", headers=other)).status == 404
    assert (await (await api.client.get("/webhooks", headers=other)).json())["webhooks"] == []
    assert (await api.client.delete(f"/webhooks/{wid}", headers=h)).status == 204
    assert (await api.client.get(f"/webhooks/{wid}", headers=h)).status == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",  # loopback (not allowed by default)
        "http://[::1]/hook",
        "http://localhost./hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata, link-local
        "http://10.0.0.5/hook",  # private
        "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
        "http://2130706433/hook",  # 127.0.0.1 as one number
        "http://0x7f.1/hook",
        "https://user:pass@93.184.216.34/hook",  # credentials
        "ftp://93.184.216.34/hook",
        "file:///etc/passwd",
        "http://0.0.0.0/hook",
    ],
)
async def test_unsafe_urls_are_refused_at_creation(api: Api, url: str) -> None:
    resp = await api.client.post("/webhooks", json={"url": url}, headers=api.auth())
    assert resp.status == 400, await resp.text()  # like every other refused field (it was 422)
    body = await resp.json()
    assert body["error"] == "Webhook URL refused"
    assert "pass" not in body["message"]  # credentials never echoed
    assert (await (await api.client.get("/webhooks", headers=api.auth())).json())["webhooks"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": ""},
        {"url": 5},
        {"url": "https://93.184.216.34/", "event_types": ["nope"]},
        {"url": "https://93.184.216.34/", "event_types": "status-update"},
        {"url": "https://93.184.216.34/", "secret": "whsec_mine"},  # never chosen by clients
        {"url": "https://93.184.216.34/\r\nX: y"},
    ],
)
async def test_bad_bodies_are_400(api: Api, body: dict[str, object]) -> None:
    resp = await api.client.post("/webhooks", json=body, headers=api.auth())
    assert resp.status == 400, await resp.text()
    assert set(await resp.json()) == {"error", "message"}


async def test_another_organizations_assistant_is_422(api: Api) -> None:
    resp = await api.client.post(
        "/webhooks",
        json={"url": "https://93.184.216.34/", "assistant_id": GLOBEX_ASSISTANT_ID},
        headers=api.auth(),
    )
    assert resp.status == 422
    assert (await resp.json())["error"] == "Unknown assistant"


async def test_endpoints_per_organization_are_bounded(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("voicedock.api.routes.webhooks.MAX_ENDPOINTS_PER_ORGANIZATION", 2)
    for _ in range(2):
        resp = await api.client.post(
            "/webhooks", json={"url": "https://93.184.216.34/"}, headers=api.auth()
        )
        assert resp.status == 201
    resp = await api.client.post(
        "/webhooks", json={"url": "https://93.184.216.34/"}, headers=api.auth()
    )
    assert resp.status == 409


async def test_requires_a_key(api: Api) -> None:
    assert (await api.client.get("/webhooks")).status == 401
    resp = await api.client.post("/webhooks", json={"url": "https://93.184.216.34/"})
    assert resp.status == 401
