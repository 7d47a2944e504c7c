"""A served call's objects are freed the moment it ends, by reference counting: none is left
for Python's cyclic garbage collector, whose full collections come rarely (an ended call's
transcript, history and audio buffers would wait for one) and pause the event loop.

Each test serves one whole call the way the runner serves it, with the collector off: a
pipeline call and a speech-to-speech call over the Asterisk media fake, a pipeline call over
the FreeSWITCH fake through REST."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

import pytest

from calls.test_runner import ACME_ID, World, until, world  # noqa: F401
from calls.test_runner_realtime import KEY, answered_realtime_call
from calls.test_runner_realtime import World as RealtimeWorld
from calls.test_runner_realtime import world as realtime_world  # noqa: F401
from fakes.calls import call_finished
from fakes.garbage import cyclic_garbage
from pbx.freeswitch.live_service import TERMINAL, running_freeswitch_service
from pbx.freeswitch.live_service import until as eventually
from pbx.freeswitch.test_user_paths import place
from pipeline.synth import silence, voiced
from voicedock.calls.control import EndCall, InjectContext, Say
from voicedock.calls.runner import CallRunner

pytestmark = pytest.mark.unit

LONG = "One two three four five six seven eight nine ten eleven twelve."


def call_objects(runner: CallRunner, call_id: str) -> list[weakref.ref[object]]:
    """Weak references to the call's running state, its live conversation, its dialogue and
    its media."""
    running = runner.served.get(call_id)
    assert running is not None
    live = running.live
    assert live is not None
    parts = (running, live, live._conversation, live._media)
    return [weakref.ref(part) for part in parts]


async def test_a_pipeline_call_leaves_nothing_for_the_collector(world: World) -> None:  # noqa: F811
    world.stt.texts = ["I would like an appointment on Monday.", "Tuesday then."]
    world.llm.replies = ["Monday at nine works.", "Tuesday at ten."]
    world.tts.ms_per_char = 30
    with cyclic_garbage() as garbage:
        call_id = await world.answered_call()
        await until(lambda: world.observer.transcripts == ["Hi!"])
        await world.caller_says(voiced(600) + silence(400))
        await until(lambda: len(world.observer.transcripts) == 3)
        played = world.fake.channel().played
        before = len(played)
        await world.engine.control.run(ACME_ID, call_id, Say(LONG))
        await until(lambda: len(played) >= before + 40)
        await world.caller_says(voiced(600) + silence(400))  # a barge-in, then a turn
        await until(lambda: len(world.observer.transcripts) == 6)
        parts = call_objects(world.runner, call_id)
        await world.engine.control.run(ACME_ID, call_id, EndCall("Goodbye."))
        async with asyncio.timeout(5):
            await call_finished(world.runner, call_id)
        assert world.observer.reports == [(call_id, *world.observer.reports[0][1:])]
        await asyncio.sleep(0.1)  # the media's last tasks
        assert [part() for part in parts] == [None] * len(parts)  # freed, nothing collected
    assert world.observer.transcripts[3].startswith("One two")  # cut by the barge-in
    assert garbage.voicedock == {}


async def test_a_speech_to_speech_call_leaves_nothing_for_the_collector(
    realtime_world: RealtimeWorld,  # noqa: F811
) -> None:
    realtime_world.tts.ms_per_char = 50
    with cyclic_garbage() as garbage:
        call_id = await answered_realtime_call(
            realtime_world, {"url": realtime_world.realtime_url, "api_key": KEY}
        )
        await until(lambda: ("assistant", "Hello, dental clinic.") in realtime_world.observer.seen)
        await realtime_world.engine.control.run(ACME_ID, call_id, Say(LONG))
        channel = realtime_world.fake.channel()
        await until(lambda: len(channel.played) >= 80)
        await channel.ws.send_bytes(b"\xff" * 160)  # the caller speaks: server VAD fires
        await until(lambda: len(realtime_world.observer.seen) == 2)
        await realtime_world.engine.control.run(
            ACME_ID, call_id, InjectContext("A new patient.", trigger_response=True)
        )
        await until(lambda: ("assistant", "Hi") in realtime_world.observer.seen)
        parts = call_objects(realtime_world.runner, call_id)
        await realtime_world.engine.control.run(ACME_ID, call_id, EndCall("Goodbye."))
        async with asyncio.timeout(5):
            await call_finished(realtime_world.runner, call_id)
        await until(realtime_world.script.disconnected.is_set)
        await asyncio.sleep(0.1)
        assert [part() for part in parts] == [None] * len(parts)
    assert realtime_world.observer.reports == 1
    assert garbage.voicedock == {}


async def test_a_freeswitch_call_leaves_nothing_for_the_collector(tmp_path: Path) -> None:
    async with running_freeswitch_service(tmp_path) as live:
        assert live.speech is not None
        live.speech.stt.texts = ["I would like an appointment on Monday."]
        live.speech.llm.replies = ["Monday at nine works."]
        far, runner = live.far_end, live.service.runner
        with cyclic_garbage() as garbage:
            call_id = await place(live)
            await live.wait_status(call_id, ("in-progress",))
            channel = far.channel_of(call_id)
            await far.speak(channel, voiced(600) + silence(600))
            await eventually(lambda: live.speech is not None and bool(live.speech.llm.calls))
            parts = call_objects(runner, call_id)
            status, body = await live.post(f"/calls/{call_id}/control", {"type": "end-call"})
            assert status == 200, body
            async with asyncio.timeout(5):
                await call_finished(runner, call_id)
            ended = await live.wait_status(call_id, TERMINAL)
            await asyncio.sleep(0.1)
            assert [part() for part in parts] == [None] * len(parts)
        assert ended["status"] == "ended"
        assert garbage.voicedock == {}
