"""A store outage during a call: another process holds the SQLite file's write lock.

The real service over the fake FreeSWITCH, driven through REST. While a separate process keeps
``BEGIN EXCLUSIVE`` on the database for 8 s, the party answers and hangs up: the call's record
afterwards is what happened at the PBX (``in-progress``, then ``ended``, in order), and a
client's write meanwhile is a 503 with ``Retry-After`` in the documented error shape.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fakes.sqlite_lock import exclusive_lock
from fakes.world import DESTINATION, SUPPORT_ID
from freeswitch.live_service import TERMINAL, running_freeswitch_service

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

LOCK_SECONDS = 8.0


async def test_events_during_a_lock_are_stored_in_order_and_api_writes_get_503(
    tmp_path: Path,
) -> None:
    async with running_freeswitch_service(tmp_path) as live:
        far = live.far_end
        far.will_ring(DESTINATION)
        status, body = await live.post(
            "/calls/outbound", {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
        )
        assert status == 200, body
        call_id = body["call_id"]
        channel = far.channel_of(call_id)

        async with exclusive_lock(tmp_path / "user-paths.db", LOCK_SECONDS) as released:
            await far.answer(call_id)
            await asyncio.sleep(1.0)
            far.hang_up(channel)

            # Reads keep working; a client's write is a 503 the client can retry.
            assert (await live.call(call_id))["status"] == "connecting"
            resp = await live.client.post(
                "/calls/outbound",
                json={"destination": DESTINATION, "assistant_id": SUPPORT_ID},
                headers=live.auth(),
            )
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            error = await resp.json()
            assert set(error) == {"error", "message"}
            assert not released.done()  # all of this happened during the outage
            await released

        ended = await live.wait_status(call_id, TERMINAL, within=15)
        assert ended["status"] == "ended", ended
        statuses = [
            (e.data.get("from"), e.data.get("to"))
            for e in await live.service.store.list_events(call_id)
            if e.type == "status"
        ]
        assert statuses == [
            (None, "connecting"),
            ("connecting", "in-progress"),
            ("in-progress", "ended"),
        ]
