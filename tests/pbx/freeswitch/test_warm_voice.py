"""Warm transfer on FreeSWITCH: the agent may answer the briefing by voice ("yes" / "no").

The agent leg's mod_audio_stream stream (opened for the briefing) carries the agent's voice
back; a fake recognizer stands in for the offline STT (through the service: a stand-in of the
offline Whisper, in the node's recognition pool).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fakes.world import DESTINATION, SUPPORT_ID
from pbx.freeswitch.fake_freeswitch import FakeFreeswitch, PbxEventRecorder
from pbx.freeswitch.live_service import TERMINAL, running_freeswitch_service
from pbx.freeswitch.test_pbx_control import AGENT, agent_leg, answered_call
from pbx.freeswitch.test_warm_briefing import running, tone_voice, until, warm_with_briefing
from pipeline.synth import silence, voiced
from pipeline.test_recognition import BlockingStt
from voicedock.calls.offline_speech import operator_stt
from voicedock.config import Settings
from voicedock.domain.assistant_config import SttConfig
from voicedock.pbx.base import PbxEventKind
from voicedock.pbx.freeswitch.pbx import FreeswitchPbx
from voicedock.pipeline.pools.worker_pool import Priority
from voicedock.pipeline.providers.registry import stt_registry

pytestmark = pytest.mark.unit

RATE = 16000  # the agent stream's rate (slin16)


class FakeRecognizer:
    """Answers every utterance with ``text`` and counts them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.heard: list[int] = []  # sample rates

    async def __call__(self, pcm: bytes, sample_rate: int) -> str:
        self.heard.append(sample_rate)
        return self.text


@pytest.fixture
async def fake() -> AsyncIterator[FakeFreeswitch]:
    async with FakeFreeswitch(password="fake-esl-secret") as fs:
        yield fs


@pytest.fixture
async def events() -> PbxEventRecorder:
    return PbxEventRecorder()


async def agent_says_something(
    pbx: FreeswitchPbx, fake: FakeFreeswitch, events: PbxEventRecorder
) -> tuple[str, str]:
    """Start the warm transfer, wait for the briefing, then speak on the agent's stream."""
    call_id = await answered_call(pbx, events)
    await pbx.transfer(call_id, warm_with_briefing())
    leg = await agent_leg(fake)
    await until(lambda: bool(fake.queued(leg)))
    await until(lambda: leg in fake.streams_by_uuid)
    fake.streams_by_uuid[leg].send_audio(voiced(700, RATE) + silence(800, RATE))
    return call_id, leg


async def test_agent_saying_yes_is_bridged_to_the_caller(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    recognizer = FakeRecognizer("yes, put them through")
    async with await running(fake, events, voice=tone_voice(0.2)) as pbx:
        pbx.warm.dialogue.transcribe = recognizer
        call_id, leg = await agent_says_something(pbx, fake, events)
        done = await events.wait_for(call_id, PbxEventKind.TRANSFERRED, timeout=5)
    assert done.detail == AGENT  # the destination: the call record's transferred_to
    assert recognizer.heard
    assert set(recognizer.heard) == {RATE}
    assert f"api uuid_bridge {fake.uuid_of(call_id)} {leg}" in fake.commands
    assert f"api uuid_kill {leg} NORMAL_CLEARING" not in fake.commands
    assert PbxEventKind.TRANSFER_FAILED not in events.kinds(call_id)


async def test_agent_saying_yes_before_the_briefing_is_synthesised_counts(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    """The agent is heard from their answer on: a "yes" said while the briefing is still
    being synthesised (a slow voice) decides, as on Asterisk."""
    synthesised = asyncio.Event()

    async def slow_voice(text: str) -> tuple[bytes, int]:
        await synthesised.wait()
        return await tone_voice(0.2)(text)

    recognizer = FakeRecognizer("yes")
    async with await running(fake, events, voice=slow_voice) as pbx:
        pbx.warm.dialogue.transcribe = recognizer
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: leg in fake.streams_by_uuid)
        fake.streams_by_uuid[leg].send_audio(voiced(700, RATE) + silence(800, RATE))
        done = await events.wait_for(call_id, PbxEventKind.TRANSFERRED, timeout=5)
        assert not synthesised.is_set()
        synthesised.set()
    assert done.detail == AGENT
    assert recognizer.heard == [RATE]
    assert not fake.queued(leg)  # no briefing was played: the agent had already answered


async def test_agent_saying_no_is_hung_up_and_the_caller_stays(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    async with await running(fake, events, voice=tone_voice(0.2)) as pbx:
        pbx.warm.dialogue.transcribe = FakeRecognizer("no thanks")
        call_id, leg = await agent_says_something(pbx, fake, events)
        failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED, timeout=5)
    assert failed.detail == "warm-declined"
    assert f"api uuid_kill {leg} NORMAL_CLEARING" in fake.commands
    assert not any(c.startswith("api uuid_bridge") for c in fake.commands)
    assert fake.uuid_of(call_id) in fake.channels


async def test_unclear_speech_leaves_the_digit_to_decide(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    recognizer = FakeRecognizer("hmm, who is it")
    async with await running(fake, events, voice=tone_voice(0.2)) as pbx:
        pbx.warm.dialogue.transcribe = recognizer
        call_id, leg = await agent_says_something(pbx, fake, events)
        await until(lambda: bool(recognizer.heard))
        fake.press_digit(leg, "1")
        await events.wait_for(call_id, PbxEventKind.TRANSFERRED, timeout=5)
    assert f"api uuid_bridge {fake.uuid_of(call_id)} {leg}" in fake.commands


async def test_with_voice_answers_off_speech_is_not_transcribed(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    recognizer = FakeRecognizer("yes")
    spoken: list[str] = []
    voice = tone_voice(0.2, spoken)
    async with await running(fake, events, voice=voice, voice_decision=False) as pbx:
        pbx.warm.dialogue.transcribe = recognizer
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: bool(fake.queued(leg)))
        # The briefing's stream ends with it: nothing the agent says is listened to.
        await until(lambda: f"api uuid_audio_stream {leg} stop" in fake.commands)
        fake.press_digit(leg, "2")
        failed = await events.wait_for(call_id, PbxEventKind.TRANSFER_FAILED)
    assert failed.detail == "warm-declined"
    assert recognizer.heard == []
    assert spoken[0].endswith("Press 1 to take the call, or 2 to decline.")


async def test_without_the_audio_stream_module_the_digit_still_decides(
    fake: FakeFreeswitch, events: PbxEventRecorder
) -> None:
    fake.audio_stream_loaded = False
    async with await running(fake, events, voice=tone_voice(0.2)) as pbx:
        pbx.warm.dialogue.transcribe = FakeRecognizer("no")
        call_id = await answered_call(pbx, events)
        await pbx.transfer(call_id, warm_with_briefing())
        leg = await agent_leg(fake)
        await until(lambda: bool(fake.queued(leg)))
        fake.press_digit(leg, "1")
        await events.wait_for(call_id, PbxEventKind.TRANSFERRED)
    assert fake.broadcasts == [(leg, "tone_stream://L=2;%(400,200,880)")]


@pytest.mark.parametrize("pool", [True, False], ids=["recognition-pool", "no-pool"])
async def test_through_the_service_the_answer_is_transcribed_by_the_nodes_recognizer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: bool
) -> None:
    """The service's warm transfers hear the agent with the model and pool its calls use: with
    ``[speech] recognition_pool`` each answer is a job of the node's recognition pool (bounded
    with the calls' transcriptions, counted in the wait admission control reads), built with
    the operator's Whisper settings; without the pool, the offline STT on its own as before."""
    stand_in = BlockingStt(("yes, put them through",))  # the offline Whisper's stand-in
    built: list[SttConfig] = []

    def offline(config: SttConfig, _egress: object) -> BlockingStt:
        built.append(config)
        return stand_in

    monkeypatch.setitem(stt_registry._factories, "offline", offline)  # type: ignore[attr-defined]

    def configure(settings: Settings) -> None:
        settings.speech.recognition_pool = pool
        settings.speech.recognition_workers = 1

    async with running_freeswitch_service(tmp_path, configure) as live:
        fs = live.far_end.fake
        pbx = live.service.pbx
        assert isinstance(pbx, FreeswitchPbx)
        assert pbx.warm.dialogue is not None
        pbx.warm.dialogue.synthesize = tone_voice(0.2)  # not Piper: the briefing is not the point
        recognition = live.service.runner.speech.recognition
        assert (recognition is not None) is pool
        status, body = await live.post(
            "/calls/outbound", {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
        )
        assert status == 200, body
        call_id = str(body["call_id"])
        await live.wait_status(call_id, ("in-progress",))
        transfer = {"type": "transfer", "destination": "sales", "mode": "warm"}
        status, body = await live.post(f"/calls/{call_id}/control", transfer)
        assert status == 200, body

        # The agent's leg: the originate of "sales" through the transfer context.
        await until(lambda: any("}loopback/sales/" in c for c in fs.commands))
        (originate,) = [c for c in fs.commands if "}loopback/sales/" in c]
        leg = originate.split("origination_uuid=", 1)[1].split(",", 1)[0]
        await until(lambda: leg in fs.streams_by_uuid)
        fs.streams_by_uuid[leg].send_audio(voiced(700, RATE) + silence(800, RATE))
        ended = await live.wait_status(call_id, TERMINAL, within=10)

    assert (ended["status"], ended["end_reason"]) == ("ended", "transferred"), ended
    assert len(stand_in.calls) == 1  # the agent's one answer, heard and understood
    if pool:
        assert recognition is not None
        assert recognition.pool.started[Priority.DUE] == 1  # ... as a job of the node's pool
        operator = operator_stt("offline", live.service.settings.speech)
        assert built == [operator]  # the calls' model and threads
    else:
        assert built == [SttConfig(provider="offline")]  # the offline STT on its own, as before
