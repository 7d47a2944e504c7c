"""Adopting a previous run's call whose caller hangs up while voicedock looks at it: Asterisk
still lists the channel, then refuses the subscription to its events because the channel is
gone (ARI answers ``422 Event source does not exist``). The call is not adopted, and nothing of
it stays registered, so the leftovers can be cleared."""

from __future__ import annotations

from typing import Any

import pytest

from pbx.asterisk.test_cancel import StubAri
from voicedock.config import AsteriskSettings
from voicedock.domain.ids import new_outbound_call_id
from voicedock.pbx.asterisk.ari.rest import AriHttpError
from voicedock.pbx.asterisk.pbx import AsteriskPbx
from voicedock.pbx.base import PbxEvent

pytestmark = pytest.mark.unit


class VanishingAri(StubAri):
    """Lists the caller's channel up in our app; it is gone by the time we subscribe."""

    def __init__(self, app: str) -> None:
        super().__init__()
        self.app = app

    async def request(self, method: str, path: str, **_: Any) -> Any:
        if method == "GET" and path.startswith("/channels/"):
            dialplan = {"app_name": "Stasis", "app_data": f"{self.app},outbound"}
            return {"id": path.rsplit("/", 1)[1], "state": "Up", "dialplan": dialplan}
        if method == "GET" and path == "/bridges":
            return []
        if method == "DELETE" and path.startswith("/bridges/"):
            raise AriHttpError(method, path, 404, "Bridge not found")  # none was left
        raise AssertionError(f"unexpected ARI {method} {path}")

    async def subscribe_channel(self, channel_id: str) -> None:
        raise AriHttpError(
            "POST", "/applications/x/subscription", 422, "Event source does not exist"
        )


async def test_a_caller_gone_before_the_subscription_is_not_adopted() -> None:
    settings = AsteriskSettings(originate_via="ari")
    ari = VanishingAri(settings.app)
    pbx = AsteriskPbx(settings, ari=ari)  # type: ignore[arg-type]

    async def sink(event: PbxEvent) -> None:
        return None

    await pbx.start(sink)
    try:
        call_id = new_outbound_call_id()
        assert not await pbx.adopt_call(call_id, None)
        assert call_id not in await pbx.live_call_ids()
    finally:
        await pbx.aclose()
