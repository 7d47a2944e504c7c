"""``GET /health`` of the real service connected to the lab Asterisk (ARI and AMI links up)."""

from __future__ import annotations

import pytest

from e2e.conftest import LiveService

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]


async def test_health_is_200_with_the_lab_asterisk(live: LiveService) -> None:
    resp = await live.client.get("/health")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["can_place_calls"] is True
    links = {"ari": "up"} if live.pbx.ami is None else {"ari": "up", "ami": "up"}
    assert body["pbx"] == {"kind": "asterisk", "status": "up", "links": links}
