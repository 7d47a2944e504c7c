from __future__ import annotations

import pytest

from api.conftest import Api

pytestmark = pytest.mark.unit


async def test_health_and_auth(api: Api) -> None:
    resp = await api.client.get("/health")
    assert resp.status == 200
    resp = await api.client.get("/calls")
    assert resp.status == 401
    assert (await resp.json())["error"] == "Invalid API key"
    resp = await api.client.get("/calls", headers=api.auth())
    assert resp.status == 200
