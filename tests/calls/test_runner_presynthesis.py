"""The runner synthesizes a call's first message while it rings (``[speech] presynthesis``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from calls.test_runner import FAST, ReportCounter, until
from fakes.calls import call_finished, calls_of, place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import MediaFakePbx
from fakes.requests import outbound_request
from fakes.world import ACME, ACME_NUMBERS, DESTINATION, SUPPORT_ID, org_id
from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeLlm, FakeStt
from pipeline.sentence_tts import GatedTts
from voicedock.calls.engine import CallEngine
from voicedock.calls.live.conversation import SpeechProviders
from voicedock.calls.runner import CallRunner
from voicedock.config import Settings
from voicedock.pbx.base import InboundCall, PbxEventKind
from voicedock.pipeline.speaking.synthesis import CachedTts

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)


class Node:
    def __init__(
        self,
        runner: CallRunner,
        engine: CallEngine,
        pbx: MediaFakePbx,
        observer: ReportCounter,
        store: MemoryStore,
    ) -> None:
        self.runner, self.engine, self.pbx, self.store = runner, engine, pbx, store
        self.tts_made: list[GatedTts] = []
        self.voices: list[Any] = []  # the TTS each answered call spoke with
        self.observer = observer

    async def providers(self, config: Mapping[str, Any]) -> SpeechProviders:
        tts = GatedTts()
        self.tts_made.append(tts)
        return SpeechProviders(FakeStt(), FakeLlm(), tts)

    async def place(self) -> str:
        request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
        result = await place_outbound(self.engine, ACME_ID, request)
        return str(result.body["call_id"])

    def synthesized(self) -> list[str]:
        return [s for tts in self.tts_made for s in tts.synthesized]


def node_fixture(presynthesis: bool) -> Callable[..., AsyncIterator[Node]]:
    async def fixture(store: MemoryStore, settings: Settings) -> AsyncIterator[Node]:
        settings.speech.presynthesis = presynthesis
        async with FakeAsterisk(send_audio=False) as fake:
            pbx = MediaFakePbx(fake)
            holder: list[Node] = []

            async def providers(config: Mapping[str, Any]) -> SpeechProviders:
                return await holder[0].providers(config)

            observer = ReportCounter()
            engine, runner = calls_of(
                store, pbx, settings, observers=[observer], providers=providers, conversation=FAST
            )
            node = Node(runner, engine, pbx, observer, store)
            holder.append(node)
            async with runner:
                await pbx.start(runner.events.handle_pbx_event)
                yield node

    return fixture


node = pytest.fixture(node_fixture(True))
baseline = pytest.fixture(node_fixture(False))


async def test_first_message_is_synthesized_while_the_call_rings(node: Node) -> None:
    call_id = await node.place()
    await until(lambda: node.synthesized() == ["Hi!"])  # not answered yet
    assert node.runner.speech.synthesis is not None
    assert node.runner.speech.synthesis.ready(node.tts_made[0], ACME_ID, "Hi!")
    await node.pbx.answer(call_id)
    await until(lambda: node.observer.transcripts == ["Hi!"])  # heard
    assert node.synthesized() == ["Hi!"]  # from the cache: not synthesized again
    second = await node.place()
    await node.pbx.answer(second)
    await until(lambda: node.observer.transcripts == ["Hi!", "Hi!"])
    assert node.synthesized() == ["Hi!"]  # the campaign's greeting, synthesized once


async def test_an_inbound_call_s_greeting_is_synthesized_once_its_assistant_is_known(
    node: Node,
) -> None:
    call_id = await node.engine.inbound.accept(
        InboundCall("ref-1", "+31623731537", ACME_NUMBERS[0])
    )
    assert call_id is not None
    await until(lambda: node.synthesized() == ["Hi!"])  # before the PBX answers it
    await node.pbx.answer(call_id)
    await until(lambda: node.observer.transcripts == ["Hi!"])
    assert node.synthesized() == ["Hi!"]


async def test_a_call_that_never_answers_releases_its_presynthesis(node: Node) -> None:
    assert node.runner.speech.synthesis is not None
    presynthesis = node.runner.presynthesis
    assert presynthesis is not None
    call_id = await node.place()
    await until(lambda: call_id in presynthesis._prepared)
    await node.pbx.emit(call_id, PbxEventKind.HANGUP, cause=19)  # no answer
    await until(lambda: call_id not in presynthesis._prepared)  # task over, speech released
    assert not node.runner.speech.synthesis._pending
    assert len(presynthesis._tasks.children) == 0  # nothing left running for it


async def test_answered_calls_speak_through_the_node_cache(node: Node) -> None:
    call_id = await node.place()
    await node.pbx.answer(call_id)
    await until(lambda: node.observer.transcripts == ["Hi!"])
    running = node.runner.served.get(call_id)
    assert running is not None
    assert running.live is not None
    assert isinstance(running.live._providers.tts, CachedTts)  # type: ignore[union-attr]


async def test_presynthesis_off_is_the_old_behaviour(baseline: Node) -> None:
    assert baseline.runner.speech.synthesis is None
    assert baseline.runner.presynthesis is None  # nothing told of calls that ring
    call_id = await baseline.place()
    await baseline.pbx.answer(call_id)
    await until(lambda: baseline.observer.transcripts == ["Hi!"])
    assert baseline.synthesized() == ["Hi!"]
    assert len(baseline.tts_made) == 1  # only the call's own TTS, after the answer


async def test_ringing_builds_the_call_s_voice_alone(
    store: MemoryStore, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Synthesis ahead needs the call's TTS only: no STT or LLM is made while it rings."""
    from voicedock.calls.live import providers as live_providers

    made: list[str] = []
    voices: list[GatedTts] = []

    def stt(config: Mapping[str, Any], egress: Any = None) -> FakeStt:
        made.append("stt")
        return FakeStt()

    def llm(config: Mapping[str, Any], egress: Any = None) -> FakeLlm:
        made.append("llm")
        return FakeLlm()

    def tts(config: Mapping[str, Any], egress: Any = None) -> GatedTts:
        made.append("tts")
        voices.append(GatedTts())
        return voices[-1]

    monkeypatch.setattr(live_providers, "create_stt", stt)
    monkeypatch.setattr(live_providers, "create_llm", llm)
    monkeypatch.setattr(live_providers, "create_tts", tts)
    async with FakeAsterisk(send_audio=False) as fake:
        pbx = MediaFakePbx(fake)
        observer = ReportCounter()
        engine, runner = calls_of(store, pbx, settings, observers=[observer], conversation=FAST)
        async with runner:
            await pbx.start(runner.events.handle_pbx_event)
            node = Node(runner, engine, pbx, observer, store)
            call_id = await node.place()
            await until(lambda: [s for v in voices for s in v.synthesized] == ["Hi!"])
            assert made == ["tts"]  # ringing: the voice alone
            await pbx.answer(call_id)
            await until(lambda: node.observer.transcripts == ["Hi!"])
            assert sorted(made) == ["llm", "stt", "tts", "tts"]  # answered: the whole call


async def test_the_call_s_record_tells_how_long_its_media_leg_and_greeting_took(
    node: Node,
) -> None:
    """``GET /calls/{id}`` ``timings``: from the answer to the media leg connected (bridged
    with the caller) and to the greeting's first audio written to it, in ms."""
    import msgspec

    from voicedock.api.models.calls import CallReply
    from voicedock.calls.commands import EndCall

    call_id = await node.place()
    await until(lambda: node.synthesized() == ["Hi!"])
    opens = node.pbx.media_opens = asyncio.Event()
    await node.pbx.answer(call_id)
    asyncio.get_running_loop().call_later(0.05, opens.set)  # the media leg: 50 ms to come up
    await until(lambda: node.observer.transcripts == ["Hi!"])
    await node.engine.control.run(ACME_ID, call_id, EndCall(None))
    await call_finished(node.runner, call_id)
    call = await node.store.get_call(None, call_id)
    assert call is not None
    timings = msgspec.to_builtins(CallReply.of(call, [], []))["timings"]
    assert set(timings) == {"media_connected_ms", "first_audio_ms"}
    assert 50 <= timings["media_connected_ms"] <= timings["first_audio_ms"] < 1000


async def test_a_call_opening_in_another_language_is_not_synthesized_ahead(node: Node) -> None:
    """Its greeting is the language's first message in the language's voice: the assistant's
    own greeting synthesized ahead would be spent for nothing."""
    german = {"language": "de", "first_message": "Hallo!", "calling_codes": ["49"]}
    espeak = {"provider": "espeak-ng", "voice": "en-us"}
    presynthesis = node.runner.presynthesis
    assert presynthesis is not None
    # Placed first: the German number's call, then the Dutch one's (no language of its own).
    for destination, greeting in (("+493012345678", "Hi there!"), (DESTINATION, "Hi!")):
        assistant = {"first_message": greeting, "tts_config": espeak, "languages": [german]}
        request = outbound_request({"destination": destination, "assistant": assistant})
        result = await place_outbound(node.engine, ACME_ID, request)
        assert result.status == 200, result.body
    await until(lambda: "Hi!" in node.synthesized())
    await asyncio.sleep(0.05)
    assert node.synthesized() == ["Hi!"]
