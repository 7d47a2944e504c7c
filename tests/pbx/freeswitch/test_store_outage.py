"""A store outage during a call: another process holds the SQLite file's write lock.

The real service driven through REST, on the in-process fake FreeSWITCH and on the real lab
FreeSWITCH. While a separate process keeps ``BEGIN EXCLUSIVE`` on the database (until the
service has queued the party's answer and hang-up), the party answers and hangs up: the call's
record afterwards is what happened at the PBX (``in-progress``, then ``ended``, in order), and
a client's write meanwhile is a 503 with ``Retry-After`` in the documented error shape.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.conftest import LiveService
from fakes.sqlite_lock import exclusive_lock
from fakes.world import DESTINATION, SUPPORT_ID
from freeswitch_lab.lab_service import running_lab_service
from pbx.freeswitch.live_service import TERMINAL, running_freeswitch_service, until
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import LATE_ANSWER

pytestmark = [pytest.mark.timeout(60)]

LOCK_SECONDS = 60.0  # the most: the test releases the lock once the party's hang-up was seen


@dataclass
class Party:
    """The called party of the test's call: where it is, how it answers and hangs up."""

    live: LiveService
    destination: str
    answer: Callable[[str], Awaitable[None]]  # call id -> returns once the party answered
    hang_up: Callable[[str], Awaitable[None]]


def hung_up_seen(live: LiveService, call_id: str) -> bool:
    """Both of the party's events wait in the service's backlog of writes: the answer and the
    hang-up (the call's only works while the store is locked)."""
    backlog = live.service.runner.backlog
    return backlog.pending(call_id) and len(backlog) >= 2


@asynccontextmanager
async def _fake(_request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Party]:
    async with running_freeswitch_service(tmp_path) as live:
        far = live.far_end
        far.will_ring(DESTINATION)

        async def hang_up(call_id: str) -> None:
            far.hang_up(far.channel_of(call_id))

        yield Party(live, DESTINATION, far.answer, hang_up)


@asynccontextmanager
async def _lab(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Party]:
    """The lab's late-answering party: it rings 2 s, then answers by itself."""
    lab: LabFreeswitch = request.getfixturevalue("freeswitch_lab")
    async with running_lab_service(lab, tmp_path) as live:

        async def answered(call_id: str) -> None:
            channel = await live.channel_of(call_id)

            async def active() -> bool:
                states = {c.uuid: c.call_state for c in await live.fs.esl.show_channels()}
                return states.get(channel) == "ACTIVE"

            await until(active, within=5)

        async def hang_up(call_id: str) -> None:
            await asyncio.to_thread(lab.api, f"uuid_kill {await live.channel_of(call_id)}")

        yield Party(live, LATE_ANSWER, answered, hang_up)


@pytest.mark.parametrize(
    "pbx",
    [
        pytest.param(_fake, id="fake", marks=pytest.mark.unit),
        pytest.param(_lab, id="lab", marks=[pytest.mark.freeswitch_lab, pytest.mark.e2e]),
    ],
)
async def test_events_during_a_lock_are_stored_in_order_and_api_writes_get_503(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pbx: Callable[[pytest.FixtureRequest, Path], AbstractAsyncContextManager[Party]],
) -> None:
    async with pbx(request, tmp_path) as party:
        live = party.live
        body = {"destination": party.destination, "assistant_id": SUPPORT_ID}
        status, reply = await live.post("/calls/outbound", body)
        assert status == 200, reply
        call_id = reply["call_id"]
        database = live.service.settings.database.url.removeprefix("sqlite:///")

        release = asyncio.Event()
        async with exclusive_lock(database, LOCK_SECONDS, release) as released:
            await party.answer(call_id)
            await asyncio.sleep(1.0)
            await party.hang_up(call_id)

            # Reads keep working; a client's write is a 503 the client can retry.
            assert (await live.call(call_id))["status"] == "connecting"
            resp = await live.client.post("/calls/outbound", json=body, headers=live.auth())
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            error = await resp.json()
            assert set(error) == {"error", "message"}
            # The service took the party's hang-up while the store was still locked.
            await until(lambda: hung_up_seen(live, call_id), within=15)
            assert not released.done()  # all of this happened during the outage
            release.set()
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
