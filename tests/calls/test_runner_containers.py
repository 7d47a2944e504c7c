"""Whole calls leave nothing behind in the node's long-lived objects (in process).

A node serves calls for days, so every dict, set, list or deque its long-lived objects keep
(the service and everything it holds: the PBX adapter and its wire client, the engine and its
parts, the runner, the media, the webhooks, the node's commands, the API's parts, the
module-level caches, the locals of its long-lived tasks) must shrink back when a call is over,
or be bounded. Whole calls the way a user makes them, through REST on the FreeSWITCH fake (the
real adapter, engine and runner): an outbound call with a turn and a ``say`` ended by
``end-call``, one the party hangs up, an inbound caller who hangs up. After a few such rounds
and then many more, no container is larger than it was after the first ones
(``fakes.containers``; the lab Asterisk's calls: ``tests/e2e/test_containers_lab.py``).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from fakes.calls import call_finished
from fakes.containers import app_roots, container_sizes, grown
from fakes.world import ACME_NUMBERS
from pbx.freeswitch.live_service import (
    TERMINAL,
    SpeechFakes,
    UserPathService,
    running_freeswitch_service,
)
from pbx.freeswitch.live_service import until as eventually
from pbx.freeswitch.test_user_paths import place
from pipeline.synth import silence, voiced

pytestmark = pytest.mark.unit

WARM_UP_ROUNDS = 3
MORE_ROUNDS = 10
_callers = (f"+3161234{n:04d}" for n in itertools.count(1000))


async def ended_by_us(live: UserPathService, speech: SpeechFakes) -> None:
    call_id = await place(live)
    await live.wait_status(call_id, ("in-progress",))
    heard = len(speech.llm.calls)
    await live.far_end.speak(live.far_end.channel_of(call_id), voiced(600) + silence(600))
    await eventually(lambda: len(speech.llm.calls) > heard)
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "say", "content": "Hi."})
    assert status == 200, body
    status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
    assert status == 200, body
    await finished(live, call_id)


async def hung_up_by_the_party(live: UserPathService, speech: SpeechFakes) -> None:
    call_id = await place(live)
    await live.wait_status(call_id, ("in-progress",))
    await eventually(lambda: live.service.runner.served.get(call_id) is not None)
    live.far_end.hang_up(live.far_end.channel_of(call_id))
    await finished(live, call_id)


async def inbound(live: UserPathService, speech: SpeechFakes) -> None:
    caller = next(_callers)
    channel = live.far_end.call_in(ACME_NUMBERS[0], caller=caller)
    answered: list[str] = []

    async def in_progress() -> bool:
        status, body = await live.get("/calls")
        assert status == 200, body
        calls = body["calls"]
        answered[:] = [c["id"] for c in calls if c["caller_phone"] == caller]
        return any(c["caller_phone"] == caller and c["status"] == "in-progress" for c in calls)

    await eventually(in_progress)
    live.far_end.hang_up(channel)
    await finished(live, answered[0])


async def finished(live: UserPathService, call_id: str) -> None:
    async with asyncio.timeout(5):
        await call_finished(live.service.runner, call_id)
    await live.wait_status(call_id, TERMINAL)


async def sizes_once_settled(live: UserPathService) -> dict[str, int]:
    await asyncio.sleep(0.3)  # the last hang-ups, records and webhooks
    return container_sizes(app_roots(live.service, live.client.server.app))


async def test_calls_leave_no_container_of_the_node_larger(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path) as live:
        speech = live.speech
        assert speech is not None
        speech.stt.texts = ["I would like an appointment on Monday."] * 100
        rounds = (ended_by_us, hung_up_by_the_party, inbound)
        for _ in range(WARM_UP_ROUNDS):
            for kind in rounds:
                await kind(live, speech)
        before = await sizes_once_settled(live)
        for _ in range(MORE_ROUNDS):
            for kind in rounds:
                await kind(live, speech)
        after = await sizes_once_settled(live)
        assert len(after) > 100  # the walk reached the node's parts
        assert grown(before, after) == {}
