"""A speech-to-speech call (``provider: xai_realtime``) through the runner, end to end: the
realtime session against the loopback Realtime server, what must be said verbatim (first
message, ``say``, the final message) spoken by voicedock's own TTS in the voice the assistant
chose (``llm_config.say_voice``), the model's audio played, per-turn latency recorded."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from fakes.calls import call_finished, calls_of, place_outbound
from fakes.local_server import LocalServer
from fakes.memory_store import MemoryStore
from fakes.pbx import MediaFakePbx
from fakes.requests import outbound_request
from fakes.world import ACME, DESTINATION, org_id
from media.fake_asterisk import FakeAsterisk
from pipeline.cloud.fake_realtime import RealtimeScript, realtime_handler
from pipeline.fakes import FakeSink, FakeTts
from voicedock.api.models.calls import CallReply
from voicedock.calls.control import EndCall, InjectContext, Say
from voicedock.calls.engine import CallEngine
from voicedock.calls.runner import CallRunner
from voicedock.config import Settings
from voicedock.config.disclosure import AiDisclosureSettings
from voicedock.domain.assistant_config import RealtimeConfig, TtsConfig
from voicedock.domain.records import Call, CallEvent, CallMessage, CallStatus
from voicedock.media.codecs import ulaw_encode
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import (
    CallEvents,
    MessageAdded,
    ReplyInterrupted,
    ReplyStarted,
    SpeechStarted,
)
from voicedock.pipeline.dialogue.realtime_dialogue import RealtimeDialogue, RealtimeParts
from voicedock.pipeline.frames import supervisor_note
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.providers.realtime import RealtimeSpeech
from voicedock.pipeline.providers.registry import tts_registry
from voicedock.pipeline.tools import ToolExecutor
from voicedock.store.base import Transaction

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)
KEY = "xai-test-secret"
TEST_TTS = "runner-realtime-test-tts"


@dataclass
class Transcripts:
    seen: list[tuple[str, str]] = field(default_factory=list)
    reports: int = 0

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        if event.type == "transcript":
            self.seen.append((str(event.data["role"]), str(event.data["content"])))

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        self.reports += 1


@dataclass
class RepliesStarted:
    """Watches every served call: how many of its speeches began to be heard (the first
    message and each reply of the model, ``ReplyStarted``)."""

    count: int = 0

    def watch(self, call: Call, events: CallEvents) -> None:
        events.subscribe(ReplyStarted, self._started)

    def _started(self, _started: ReplyStarted) -> None:
        self.count += 1


@dataclass
class World:
    fake: FakeAsterisk
    pbx: MediaFakePbx
    engine: CallEngine
    runner: CallRunner
    store: MemoryStore
    script: RealtimeScript
    realtime_url: str
    tts: FakeTts
    observer: Transcripts
    tts_configs: list[dict[str, Any]]  # what voicedock's TTS was built with (its voice)
    started: RepliesStarted

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.script.events if e["type"] == kind]


@pytest.fixture
async def world(store: MemoryStore, settings: Settings) -> AsyncIterator[World]:
    tts = FakeTts(8000, ms_per_char=10)
    tts_configs: list[dict[str, Any]] = []
    # The realtime server the assistants name runs on loopback, as a local one would.
    settings.egress.allowed_networks = ["127.0.0.1/32"]

    def make_tts(config: TtsConfig, _egress: object = None) -> FakeTts:
        tts_configs.append(msgspec.to_builtins(config))  # as JSON: what was set
        return tts

    tts_registry.register(TEST_TTS, make_tts)
    settings.speech.tts = TEST_TTS  # voicedock's own voice on speech-to-speech calls
    # The call's media hands over silence for the gaps in the caller's audio: not speech.
    script = RealtimeScript(token=KEY, silence_is_quiet=True)
    server = LocalServer()
    server.route("GET", "/v1/realtime", realtime_handler(script))
    try:
        async with server, FakeAsterisk(send_audio=False) as fake:
            pbx = MediaFakePbx(fake)
            observer, started = Transcripts(), RepliesStarted()
            engine, runner = calls_of(
                store, pbx, settings, observers=[observer], close_timeout=5, watchers=(started,)
            )
            async with runner:
                await pbx.start(runner.events.handle_pbx_event)
                url = server.url.replace("http://", "ws://") + "/v1/realtime"
                yield World(
                    fake,
                    pbx,
                    engine,
                    runner,
                    store,
                    script,
                    url,
                    tts,
                    observer,
                    tts_configs,
                    started,
                )
    finally:
        tts_registry._factories.pop(TEST_TTS, None)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


FIRST = "Hello, dental clinic."


class StallingTts(FakeTts):
    """The audio of a sentence starting "Second" never comes (a slow TTS): the sentence
    before it is still being said."""

    def __init__(self, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self.stalled = asyncio.Event()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if text.startswith("Second"):
            self.stalled.set()
            await asyncio.Event().wait()
        async for pcm in super().synthesize(text):
            yield pcm


@asynccontextmanager
async def dialogue(
    world: World,
    config: ConversationConfig,
    tools: ToolExecutor | None = None,
    tts: FakeTts | None = None,
    events: CallEvents | None = None,
) -> AsyncIterator[RealtimeDialogue]:
    """A speech-to-speech dialogue on the loopback server, its audio played at once."""
    speech = RealtimeSpeech(RealtimeConfig(api_key=KEY, url=world.realtime_url))
    try:
        async with RealtimeDialogue(
            RealtimeParts(
                speech=speech,
                tts=tts or world.tts,
                sink=FakeSink(instant=True),
                tools=tools,
                events=events,
            ),
            config,
        ) as running:
            yield running
    finally:
        await speech.aclose()


async def answered_realtime_call(world: World, llm_config: Mapping[str, Any], **more: Any) -> str:
    """``more``: further fields of the (transient) assistant."""
    assistant = {
        "provider": "xai_realtime",
        "system_prompt": "You book dental appointments.",
        "first_message": "Hello, dental clinic.",
        "llm_config": dict(llm_config),
        **more,
    }
    request = outbound_request(
        {"destination": DESTINATION, "assistant": assistant, "context": "Caller: Margaret."}
    )
    result = await place_outbound(world.engine, ACME_ID, request)
    call_id = str(result.body["call_id"])
    await world.pbx.answer(call_id)
    return call_id


async def test_speech_to_speech_call_says_through_our_tts_and_plays_the_model(
    world: World,
) -> None:
    call_id = await answered_realtime_call(world, {"url": world.realtime_url, "api_key": KEY})
    first = ("assistant", "Hello, dental clinic.")
    await until(lambda: first in world.observer.seen)
    (update,) = world.sent("session.update")
    instructions = update["session"]["instructions"]
    assert "dental appointments" in instructions
    assert "Margaret" in instructions
    channel = world.fake.channel()
    spoken = b"\x10\x00" * (8000 * 10 * len(first[1]) // 1000)
    assert b"".join(channel.played).startswith(ulaw_encode(spoken))  # our TTS, byte-exact

    await world.engine.control.run(ACME_ID, call_id, Say("Your code is 4 7 1."))
    await until(lambda: ("assistant", "Your code is 4 7 1.") in world.observer.seen)
    assert world.tts.texts == ["Hello, dental clinic.", "Your code is 4 7 1."]
    assert world.sent("response.create") == []  # the model was never asked to say it
    told = [e["item"]["content"][0]["text"] for e in world.sent("conversation.item.create")]
    assert any("Your code is 4 7 1." in text for text in told)  # but it knows it was said

    await world.engine.control.run(
        ACME_ID, call_id, InjectContext("The caller is a new patient.", trigger_response=True)
    )
    await until(lambda: ("assistant", "Hi") in world.observer.seen)  # the model's own reply
    assert len(world.sent("response.create")) == 1

    await world.engine.control.run(ACME_ID, call_id, EndCall("Goodbye."))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.store.get_call(None, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "api-end-call")
    messages = await world.store.list_messages(call_id)
    assert [(m.role, m.content) for m in messages] == [
        first,
        ("assistant", "Your code is 4 7 1."),
        ("assistant", "Hi"),
        ("assistant", "Goodbye."),
    ]
    assert world.pbx.hangups == [(call_id, "normal")]
    assert world.observer.reports == 1
    await until(world.script.disconnected.is_set)  # the realtime session was closed


async def test_realtime_session_refused_hangs_up_with_provider_error(world: World) -> None:
    call_id = await answered_realtime_call(
        world, {"url": world.realtime_url, "api_key": "wrong-key"}
    )
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.store.get_call(None, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "provider-error")
    assert world.pbx.hangups == [(call_id, "normal")]
    assert world.observer.reports == 1


async def test_caller_speech_cuts_what_is_being_said(world: World) -> None:
    world.tts.ms_per_char = 50
    long = "One two three four five six seven eight nine ten eleven twelve."
    call_id = await answered_realtime_call(world, {"url": world.realtime_url, "api_key": KEY})
    await until(lambda: ("assistant", "Hello, dental clinic.") in world.observer.seen)
    await world.engine.control.run(ACME_ID, call_id, Say(long))
    channel = world.fake.channel()
    await until(lambda: len(channel.played) >= 80)  # well into the long message
    await channel.ws.send_bytes(b"\x42" * 160)  # the caller speaks: server VAD fires
    await until(lambda: len(world.observer.seen) == 2)
    role, heard = world.observer.seen[1]
    assert role == "assistant"
    assert long.startswith(heard)
    assert 0 < len(heard) < len(long)
    assert any(c.startswith("FLUSH_MEDIA") for c in channel.commands)  # Asterisk's queue too
    assert world.sent("input_audio_buffer.append")  # the caller's audio reached the model
    messages_before_end = len(world.observer.seen)
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    (_, cut) = await world.store.list_messages(call_id)
    assert (cut.content, cut.interrupted) == (heard, True)
    assert len(world.observer.seen) == messages_before_end


async def test_silence_timeout_ends_a_speech_to_speech_dialogue(world: World) -> None:
    config = ConversationConfig(
        first_message="Hello.",
        endpointing=EndpointingConfig(silence_timeout_ms=300, max_duration_ms=None),
        silence_timeout_message="Goodbye for now.",
    )
    async with dialogue(world, config) as running:
        async with asyncio.timeout(3):
            assert await running.wait_ended() == "silence-timeout"
        assert [(e.role, e.content) for e in running.transcript] == [
            ("assistant", "Hello."),
            ("assistant", "Goodbye for now."),
        ]


async def test_a_refused_call_says_its_message_then_ends(world: World) -> None:
    config = ConversationConfig(
        first_message="We are closed today.", hang_up_after_first_message=True
    )
    async with dialogue(world, config) as running:
        async with asyncio.timeout(3):
            assert await running.wait_ended() == "refused"
        assert [(e.role, e.content) for e in running.transcript] == [
            ("assistant", "We are closed today.")
        ]
    assert world.tts.texts == ["We are closed today."]  # in voicedock's voice, to its end
    assert world.sent("response.create") == []  # the model never answers a refused call


async def test_a_sentence_cut_before_its_audio_is_not_in_the_transcript(world: World) -> None:
    tts = StallingTts(8000)
    async with dialogue(world, ConversationConfig(), tts=tts) as running:
        await running.say("First part. Second part.")
        await until(tts.stalled.is_set)
        running.feed_audio(b"\x00\x01" * 160)  # the caller speaks: server VAD fires
        await until(lambda: len(running.transcript) == 1)
        (cut,) = running.transcript
        assert (cut.role, cut.content, cut.interrupted) == ("assistant", "First part.", True)


async def test_the_server_vads_barge_in_is_told_on_the_calls_events(world: World) -> None:
    """What the provider's server VAD decides is told as the turn engine tells it: the
    caller's speech, then the reply it cut (kept as heard), then the barge-in."""
    events, told = CallEvents("test"), []
    for kind in (SpeechStarted, ReplyStarted, ReplyInterrupted, MessageAdded):
        events.subscribe(kind, told.append)
    tts = StallingTts(8000)
    async with dialogue(world, ConversationConfig(), tts=tts, events=events) as running:
        await running.say("First part. Second part.")
        await until(tts.stalled.is_set)
        running.feed_audio(b"\x00\x01" * 160)  # the caller speaks: server VAD fires
        await until(lambda: any(isinstance(e, ReplyInterrupted) for e in told))
    kinds = [type(e).__name__ for e in told]
    assert kinds == ["ReplyStarted", "SpeechStarted", "MessageAdded", "ReplyInterrupted"]
    cut = told[2]
    assert isinstance(cut, MessageAdded)
    assert cut.entry.interrupted
    assert told[3] == ReplyInterrupted(1)


async def test_maximum_duration_ends_a_speech_to_speech_dialogue(world: World) -> None:
    config = ConversationConfig(
        endpointing=EndpointingConfig(silence_timeout_ms=None, max_duration_ms=300)
    )
    async with dialogue(world, config) as running, asyncio.timeout(3):
        assert await running.wait_ended() == "max-duration"


async def test_realtime_session_dropping_mid_call_speaks_our_fallback(world: World) -> None:
    world.script.drop_after_session_update = True
    call_id = await answered_realtime_call(world, {"url": world.realtime_url, "api_key": KEY})
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.store.get_call(None, call_id)
    assert call is not None
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "provider-error")
    fallback = "Sorry, I am having technical difficulties. Please call again later."
    assert world.observer.seen[-1] == ("assistant", fallback)  # our own TTS still speaks
    assert world.pbx.hangups == [(call_id, "normal")]


def caller_speech(frames: int) -> list[bytes]:
    """20 ms μ-law frames of a loud voiced-band tone (speech to a VAD)."""
    pcm = b"".join(
        int(9000 * math.sin(2 * math.pi * 220 * n / 8000)).to_bytes(2, "little", signed=True)
        for n in range(160 * frames)
    )
    encoded = ulaw_encode(pcm)
    return [encoded[i : i + 160] for i in range(0, len(encoded), 160)]


async def test_each_caller_turn_records_its_latency_on_the_call(world: World) -> None:
    world.script.turn_after_frames = 10  # server VAD: the caller's turn ends after 200 ms
    world.script.reply_delay_s = 0.08  # the model takes 80 ms to its first audio
    call_id = await answered_realtime_call(world, {"url": world.realtime_url, "api_key": KEY})
    await until(lambda: ("assistant", "Hello, dental clinic.") in world.observer.seen)
    channel = world.fake.channel()
    for frame in caller_speech(10):
        await channel.ws.send_bytes(frame)
        await asyncio.sleep(0.02)
    await until(lambda: ("assistant", "Hi") in world.observer.seen)  # the model answered
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    await until(lambda: world.observer.reports == 1)  # latency is stored with the report

    call = await world.store.get_call(None, call_id)
    assert call is not None
    detail = msgspec.to_builtins(CallReply.of(call, await world.store.list_messages(call_id), []))
    (turn,) = detail["latency"]
    assert set(turn) == {
        "endpointing_ms",
        "stt_final_ms",
        "llm_first_token_ms",
        "tts_first_audio_ms",
        "first_frame_sent_ms",
        "filler_ms",
        "stt_provider",
        "llm_provider",
        "tts_provider",
        "early_cut_offs",
        "retrieval_ms",
    }  # the pipeline's shape
    assert turn["stt_final_ms"] is None  # no separate STT or LLM step on this path
    assert turn["llm_first_token_ms"] is None
    assert turn["filler_ms"] is None  # no LLM filler on this path
    assert turn["early_cut_offs"] == 0  # the caller was not judged finished too soon
    assert 0 <= turn["endpointing_ms"] < 1000
    assert 60 <= turn["tts_first_audio_ms"] < 2000  # the 80 ms, measured from our receipt
    assert turn["tts_first_audio_ms"] <= turn["first_frame_sent_ms"] < 3000


async def test_say_is_spoken_in_the_voice_the_assistant_chose(world: World) -> None:
    llm_config = {
        "url": world.realtime_url,
        "api_key": KEY,
        "voice": "Rex",
        "say_voice": {"provider": TEST_TTS, "voice": "en-gb"},
    }
    call_id = await answered_realtime_call(world, llm_config)
    await until(lambda: ("assistant", "Hello, dental clinic.") in world.observer.seen)
    (update,) = world.sent("session.update")
    assert update["session"]["voice"] == "Rex"  # the model's own voice
    # voicedock's, chosen (built while the call rang, for the first message, and for the call)
    assert {c.get("voice") for c in world.tts_configs} == {"en-gb"}
    await world.engine.control.run(ACME_ID, call_id, Say("Your code is 4 7 1."))
    await until(lambda: ("assistant", "Your code is 4 7 1.") in world.observer.seen)
    assert world.tts.texts == ["Hello, dental clinic.", "Your code is 4 7 1."]  # verbatim
    assert world.sent("response.create") == []  # never left to the model
    await world.engine.control.run(ACME_ID, call_id, EndCall("Goodbye."))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    assert world.tts.texts[-1] == "Goodbye."


def runs_of_our_voice(played: list[bytes]) -> list[int]:
    """Lengths (samples) of the stretches the caller heard in voicedock's own (fake) voice."""
    ours = ulaw_encode(b"\x10\x00")
    runs, length = [], 0
    for byte in b"".join(played):
        if byte == ours[0]:
            length += 1
        elif length:
            runs, length = [*runs, length], 0
    return [*runs, length] if length else runs


async def test_dead_air_while_the_model_stalls_is_covered_in_our_voice(world: World) -> None:
    world.script.turn_after_frames = 10  # the caller's turn ends after 200 ms of speech
    world.script.reply_delay_s = 1.6  # the model stalls before its first audio
    call_id = await answered_realtime_call(
        world,
        {"url": world.realtime_url, "api_key": KEY},
        dead_air_seconds=1,
        dead_air_message="Just a second.",
    )
    await until(lambda: ("assistant", "Hello, dental clinic.") in world.observer.seen)
    channel = world.fake.channel()
    for frame in caller_speech(10):
        await channel.ws.send_bytes(frame)
        await asyncio.sleep(0.02)
    await until(lambda: ("assistant", "Hi") in world.observer.seen, timeout=8)
    # The caller heard the greeting, then the cover in voicedock's voice, then the model.
    greeting, cover = (8000 * 10 * len(text) // 1000 for text in (FIRST, "Just a second."))
    assert runs_of_our_voice(channel.played)[:2] == [greeting, cover]
    assert len(b"".join(channel.played)) > greeting + cover  # the model's reply came after
    assert world.tts.texts == [FIRST, "Just a second."]
    assert world.sent("response.cancel") == []  # the model's reply was still awaited
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    messages = await world.store.list_messages(call_id)
    assert [(m.role, m.content) for m in messages] == [
        ("assistant", FIRST),
        ("assistant", "Just a second."),
        ("assistant", "Hi"),
    ]


async def test_a_silent_caller_is_asked_whether_they_are_still_there(world: World) -> None:
    call_id = await answered_realtime_call(
        world,
        {"url": world.realtime_url, "api_key": KEY},
        silence_prompt_seconds=2,
        silence_prompt_message="Are you still with me?",
    )
    asked = ("assistant", "Are you still with me?")
    await until(lambda: asked in world.observer.seen, timeout=6)
    channel = world.fake.channel()
    prompt = 8000 * 10 * len(asked[1]) // 1000
    assert runs_of_our_voice(channel.played)[-1] == prompt  # in voicedock's own voice
    assert world.tts.texts == [FIRST, asked[1]]
    assert world.sent("response.create") == []  # never left to the model
    told = [e["item"]["content"][0]["text"] for e in world.sent("conversation.item.create")]
    assert any(asked[1] in text for text in told)  # but it knows it was asked
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    messages = await world.store.list_messages(call_id)
    assert [(m.role, m.content) for m in messages] == [("assistant", FIRST), asked]


async def test_silence_prompt_once_then_the_silence_timeout_ends_the_call(world: World) -> None:
    config = ConversationConfig(
        first_message="Hello.",
        endpointing=EndpointingConfig(
            silence_prompt_ms=300, silence_timeout_ms=700, max_duration_ms=None
        ),
        silence_prompt_message="Still there?",
        silence_timeout_message="Goodbye for now.",
    )
    async with dialogue(world, config) as running:
        async with asyncio.timeout(5):
            assert await running.wait_ended() == "silence-timeout"
        assert [(e.role, e.content) for e in running.transcript] == [
            ("assistant", "Hello."),
            ("assistant", "Still there?"),  # once in this silence
            ("assistant", "Goodbye for now."),
        ]


async def test_no_silence_prompt_while_the_caller_holds_the_floor(world: World) -> None:
    config = ConversationConfig(
        endpointing=EndpointingConfig(
            silence_prompt_ms=200, silence_timeout_ms=None, max_duration_ms=None
        ),
        silence_prompt_message="Still there?",
    )
    async with dialogue(world, config) as running:
        running.feed_audio(b"\x00\x10" * 160)  # server VAD: the caller's turn starts
        await until(lambda: bool(world.sent("input_audio_buffer.append")))
        await asyncio.sleep(0.6)  # a long turn of the caller, never ended
        assert world.tts.texts == []
        assert running.transcript == []


async def test_keypad_entry_is_one_user_item_the_model_answers(world: World) -> None:
    world.tts.ms_per_char = 50
    long = "One two three four five six seven eight nine ten eleven twelve."
    call_id = await answered_realtime_call(
        world, {"url": world.realtime_url, "api_key": KEY}, keypad={"timeout_seconds": 5}
    )
    await until(lambda: ("assistant", "Hello, dental clinic.") in world.observer.seen)
    await world.engine.control.run(ACME_ID, call_id, Say(long))
    channel = world.fake.channel()
    await until(lambda: len(channel.played) >= 80)  # well into the long message
    for digit in "1234#":
        await channel.ws.send_str(f"DTMF_END digit:{digit}")
    await until(lambda: ("assistant", "Hi") in world.observer.seen)  # the model's answer
    role, heard = world.observer.seen[1]
    assert role == "assistant"
    assert long.startswith(heard)  # the first key cut what was being said
    assert 0 < len(heard) < len(long)
    items = [e["item"] for e in world.sent("conversation.item.create")]
    users = [i["content"][0]["text"] for i in items if i["role"] == "user"]
    assert users == ["Keypad: 1234#"]  # one item, not one per key
    assert not any("pressed" in i["content"][0]["text"] for i in items)
    assert len(world.sent("response.create")) == 1
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    messages = [(m.role, m.content) for m in await world.store.list_messages(call_id)]
    assert messages[2:] == [("user", "Keypad: 1234#"), ("assistant", "Hi")]


async def test_a_supervisor_s_whisper_is_context_for_the_model_and_theirs_in_the_transcript(
    world: World,
) -> None:
    call_id = await answered_realtime_call(world, {"url": world.realtime_url, "api_key": KEY})
    await until(lambda: ("assistant", "Hello, dental clinic.") in world.observer.seen)
    whisper = "Offer the caller a callback tomorrow."
    await world.engine.control.run(
        ACME_ID, call_id, InjectContext(whisper, trigger_response=True, source="supervisor")
    )
    await until(lambda: ("supervisor", whisper) in world.observer.seen)
    await until(lambda: bool(world.sent("response.create")))
    items = [e["item"] for e in world.sent("conversation.item.create")]
    texts = [(i["role"], i["content"][0]["text"]) for i in items]
    assert ("system", supervisor_note(whisper)) in texts  # the model knows whose it is
    assert not [t for role, t in texts if role == "user" and whisper in t]
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    messages = [(m.role, m.content) for m in await world.store.list_messages(call_id)]
    assert ("supervisor", whisper) in messages


async def test_a_required_ai_disclosure_is_said_first_by_our_tts(
    world: World, settings: Settings
) -> None:
    """The operator requires the AI disclosure; the first message lacks it: voicedock's TTS
    says it to its end, then the first message, and the model is asked to say neither."""
    disclosure = "You are speaking with an automated assistant."
    settings.ai_disclosure = AiDisclosureSettings(required=True, text=disclosure)
    call_id = await answered_realtime_call(world, {"url": world.realtime_url, "api_key": KEY})
    first = ("assistant", FIRST)
    await until(lambda: first in world.observer.seen)
    assert world.observer.seen[:2] == [("assistant", disclosure), first]
    assert world.tts.texts[:2] == [disclosure, FIRST]
    assert world.sent("response.create") == []
    await world.engine.control.run(ACME_ID, call_id, EndCall())
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.store.get_call(None, call_id)
    assert call is not None
    assert call.ai_disclosure is not None
    assert (call.ai_disclosure.method, call.ai_disclosure.said) == ("spoken", True)


async def test_a_caller_going_on_right_after_the_server_vad_ended_their_turn_is_marked(
    world: World,
) -> None:
    """The provider's VAD ends the caller's turn and hears them again a moment later: the
    turn they went on in counts the early cut-off on the call's latency record."""
    world.script.turn_after_frames = 10  # server VAD: each turn ends after 200 ms ...
    world.script.turns = 2  # ... and the caller goes on at once
    world.script.reply_delay_s = 0.08
    call_id = await answered_realtime_call(world, {"url": world.realtime_url, "api_key": KEY})
    await until(lambda: ("assistant", "Hello, dental clinic.") in world.observer.seen)
    channel = world.fake.channel()
    for frame in caller_speech(20):
        await channel.ws.send_bytes(frame)
        await asyncio.sleep(0.02)
    # The first message, then the model's answer to each turn, began to be heard: both turns
    # are on the record (a reply the server sent but the call has not yet played is not).
    await until(lambda: world.started.count >= 3)
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    await until(lambda: world.observer.reports == 1)
    call = await world.store.get_call(None, call_id)
    assert call is not None
    assert len(call.latency) == 2, call.latency
    assert call.latency[-1]["early_cut_offs"] == 1, call.latency
    assert [turn["early_cut_offs"] for turn in call.latency].count(1) == 1, call.latency
