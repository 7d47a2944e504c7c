"""CallRunner: answered calls run their conversation over the PBX's media; records and hang-ups."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient, TestServer

from e2e.conftest import start_app
from fakes.calls import call_finished, calls_of, place_outbound
from fakes.memory_store import MemoryStore
from fakes.pbx import MediaFakePbx
from fakes.requests import outbound_request
from fakes.turns import Turn
from fakes.world import ACME, DESTINATION, SUPPORT_ID, make_settings, org_id
from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeLlm, FakeStt, FakeTts, registered
from pipeline.synth import silence, voiced
from voicedock import service as service_module
from voicedock.api.api_keys import issue_api_key
from voicedock.api.app import create_app
from voicedock.calls.control import EndCall, Say, Transfer
from voicedock.calls.engine import CallEngine
from voicedock.calls.engine.pbx_events import EventApplied
from voicedock.calls.live.conversation import SpeechProviders
from voicedock.calls.recovery import resumed_config
from voicedock.calls.runner import CallRunner
from voicedock.calls.runner.one_call import MEDIA_ERROR, PROVIDER_ERROR, SHUTDOWN, media_format
from voicedock.calls.transitions import SERVICE_RESTART
from voicedock.config import Settings
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.records import Call, CallEvent, CallMessage, CallStatus
from voicedock.errors import PbxError, ProviderError
from voicedock.media.codecs import ulaw_encode
from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor
from voicedock.pbx.base import PbxEvent, PbxEventKind, TransferTarget
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.service import Service
from voicedock.store.base import Transaction

pytestmark = pytest.mark.unit

ACME_ID = org_id(ACME)
FRAME = 160  # 20 ms of µ-law
FAST = ConversationConfig(
    endpointing=EndpointingConfig(
        end_silence_ms=300, barge_in_speech_ms=200, silence_timeout_ms=None, max_duration_ms=None
    )
)


@dataclass
class ReportCounter:
    reports: list[tuple[str, CallStatus, int]] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)

    async def on_event(self, tx: Transaction, call: Call, event: CallEvent) -> None:
        if event.type == "transcript":
            self.transcripts.append(str(event.data["content"]))

    async def on_report(self, tx: Transaction, call: Call, messages: Sequence[CallMessage]) -> None:
        self.reports.append((call.id, call.status, len(messages)))


@dataclass
class World:
    fake: FakeAsterisk
    pbx: MediaFakePbx
    engine: CallEngine
    runner: CallRunner
    store: MemoryStore
    observer: ReportCounter
    stt: FakeStt
    llm: FakeLlm
    tts: FakeTts
    built: list[Mapping[str, Any]] = field(default_factory=list)
    provider_error: ProviderError | None = None

    async def providers(self, config: Mapping[str, Any]) -> SpeechProviders:
        self.built.append(config)
        if self.provider_error is not None:
            raise self.provider_error
        return SpeechProviders(self.stt, self.llm, self.tts)

    async def answered_call(self) -> str:
        request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
        result = await place_outbound(self.engine, ACME_ID, request)
        call_id = str(result.body["call_id"])
        await self.pbx.answer(call_id)
        return call_id

    async def caller_says(self, pcm: bytes) -> None:
        wire = ulaw_encode(pcm)
        ws = self.fake.channel().ws
        for start in range(0, len(wire) - FRAME + 1, FRAME):
            await ws.send_bytes(wire[start : start + FRAME])
            await asyncio.sleep(0.001)

    async def call(self, call_id: str) -> Call:
        call = await self.store.get_call(None, call_id)
        assert call is not None
        return call


@pytest.fixture
async def world(store: MemoryStore, settings: Settings) -> AsyncIterator[World]:
    async with FakeAsterisk(send_audio=False) as fake:
        pbx = MediaFakePbx(fake)
        observer = ReportCounter()
        stt, llm, tts = FakeStt(), FakeLlm(), FakeTts(8000, ms_per_char=10)
        holder: list[World] = []

        async def providers(config: Mapping[str, Any]) -> SpeechProviders:
            return await holder[0].providers(config)

        engine, runner = calls_of(
            store,
            pbx,
            settings,
            observers=[observer],
            providers=providers,
            conversation=FAST,
            close_timeout=5,
        )
        world = World(fake, pbx, engine, runner, store, observer, stt, llm, tts)
        holder.append(world)
        async with runner:
            await pbx.start(runner.events.handle_pbx_event)
            yield world


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_conversation_transcript_and_end_call_with_final_message(world: World) -> None:
    world.stt.texts = ["I would like an appointment on Monday."]
    world.llm.replies = ["Monday at nine works."]
    call_id = await world.answered_call()
    await until(lambda: world.observer.transcripts == ["Hi!"])  # first_message, heard
    assert world.pbx.media_formats == [(call_id, "ulaw")]  # the trunk's codec
    await world.caller_says(voiced(600) + silence(400))
    await until(lambda: len(world.observer.transcripts) == 3)

    await world.engine.control.run(ACME_ID, call_id, EndCall("Goodbye."))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)

    call = await world.call(call_id)
    assert call.status is CallStatus.ENDED
    assert call.end_reason == "api-end-call"
    messages = await world.store.list_messages(call_id)
    assert [(m.role, m.content) for m in messages] == [
        ("assistant", "Hi!"),
        ("user", "I would like an appointment on Monday."),
        ("assistant", "Monday at nine works."),
        ("assistant", "Goodbye."),
    ]
    assert world.observer.transcripts[-1] == "Goodbye."  # spoken to the end before hang-up
    assert world.pbx.hangups == [(call_id, "normal")]
    assert world.observer.reports == [(call_id, CallStatus.ENDED, 4)]
    assert call.latency
    assert call.latency[0]["endpointing_ms"] == 300
    assert call.analysis_result is not None
    assert call.summary
    assert world.pbx.media_released == [call_id]
    assert world.runner.served.get(call_id) is None


async def test_answers_are_served_from_the_record_the_engine_returns(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner acts on the call as the engine left it, never read again: a fresh answer,
    and one the PBX repeats for a call answered while no runner served it."""
    reads: list[str] = []
    get_call = world.store.get_call

    async def counted(organization_id: str | None, call_id: str) -> Call | None:
        reads.append(call_id)
        return await get_call(organization_id, call_id)

    monkeypatch.setattr(world.store, "get_call", counted)
    fresh = await world.answered_call()
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    repeated = str((await place_outbound(world.engine, ACME_ID, request)).body["call_id"])
    await world.engine.pbx_events.apply(PbxEvent(repeated, PbxEventKind.ANSWERED))
    assert world.runner.served.get(repeated) is None  # stored in progress, not served
    await world.pbx.answer(repeated)
    await until(lambda: world.observer.transcripts == ["Hi!", "Hi!"])  # both greeted
    assert world.runner.served.get(fresh) is not None
    assert world.runner.served.get(repeated) is not None
    assert reads == []


async def test_media_that_cannot_open_hangs_up_with_a_reason(world: World) -> None:
    world.pbx.fail_media = PbxError("externalMedia refused")
    call_id = await world.answered_call()
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.call(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, MEDIA_ERROR)
    assert world.pbx.hangups == [(call_id, "normal")]
    assert world.observer.reports == [(call_id, CallStatus.ENDED, 0)]


async def test_unavailable_providers_hang_up_with_provider_error(world: World) -> None:
    world.provider_error = ProviderError("no such voice")
    call_id = await world.answered_call()
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.call(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, PROVIDER_ERROR)
    assert world.observer.reports == [(call_id, CallStatus.ENDED, 0)]


async def test_remote_hangup_mid_conversation_stores_the_record_once(world: World) -> None:
    world.tts.ms_per_char = 50  # "Hi!": 8 frames; the long message: 2.8 s
    long = "One two three four five six seven eight nine ten eleven twelve."
    call_id = await world.answered_call()
    await world.engine.control.run(ACME_ID, call_id, Say(long))
    await until(lambda: bool(world.fake.channels) and len(world.fake.channel().played) >= 60)
    await world.pbx.hang_up_remote(call_id)
    async with asyncio.timeout(2):  # promptly, not after the message would have finished
        await call_finished(world.runner, call_id)
    call = await world.call(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "remote-hangup")
    assert world.pbx.hangups == []  # nothing left to hang up
    first, cut = await world.store.list_messages(call_id)
    assert (first.content, first.interrupted) == ("Hi!", False)
    assert cut.interrupted
    assert long.startswith(cut.content)
    assert 0 < len(cut.content) < len(long)
    assert world.observer.reports == [(call_id, CallStatus.ENDED, 2)]


async def test_commands_before_the_conversation_runs_are_replayed(world: World) -> None:
    call_id = await world.answered_call()  # the media is still connecting
    await world.engine.control.run(ACME_ID, call_id, Say("Welcome to Acme."))
    await until(lambda: "Welcome to Acme." in world.observer.transcripts)
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    assert (await world.call(call_id)).status is CallStatus.ENDED


@pytest.mark.parametrize("when", ["at-answer", "media-opening"])
async def test_end_call_while_the_media_never_opens_hangs_up_at_once(
    world: World, when: str
) -> None:
    world.pbx.media_opens = asyncio.Event()  # the media leg hangs in its set-up
    call_id = await world.answered_call()
    if when == "media-opening":
        await until(lambda: (call_id, "ulaw") in world.pbx.media_formats)
    await world.engine.control.run(ACME_ID, call_id, EndCall(None))
    async with asyncio.timeout(2):  # not when (if ever) the media opens
        await call_finished(world.runner, call_id)
    call = await world.call(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "api-end-call")
    assert world.pbx.hangups == [(call_id, "normal")]
    if when == "media-opening":
        assert world.pbx.media_released == [call_id]  # the set-up was abandoned
    assert world.observer.reports == [(call_id, CallStatus.ENDED, 0)]


@pytest.mark.parametrize("when", ["at-answer", "media-opening"])
async def test_the_party_hanging_up_while_the_media_opens_gets_the_call_reported(
    world: World, when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HANGUP stops the set-up, and reaches the call again once the engine stored it: the
    call's task, winding down by then (its record queued behind that HANGUP), must not be
    cancelled a second time, or its record is never stored and the end-of-call report, which
    waits for that record, never goes (and the engine keeps the call waiting for ever)."""
    world.pbx.media_opens = asyncio.Event()  # the media leg hangs in its set-up
    apply = world.engine.pbx_events.apply

    async def stored_slowly(event: PbxEvent, heard: datetime | None = None) -> EventApplied:
        if event.kind is PbxEventKind.HANGUP:
            await asyncio.sleep(0.1)  # a loaded store: the task winds down meanwhile
        return await apply(event, heard)

    monkeypatch.setattr(world.engine.pbx_events, "apply", stored_slowly)
    call_id = await world.answered_call()
    if when == "media-opening":
        await until(lambda: (call_id, "ulaw") in world.pbx.media_formats)
    await world.pbx.hang_up_remote(call_id)
    async with asyncio.timeout(2):
        await call_finished(world.runner, call_id)
    call = await world.call(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, "remote-hangup")
    async with asyncio.timeout(2):
        while not world.observer.reports:
            await asyncio.sleep(0.01)
    assert world.observer.reports == [(call_id, CallStatus.ENDED, 0)]
    assert world.pbx.hangups == []  # nothing left to hang up


async def test_media_closed_by_a_transfer_waits_for_its_outcome_instead_of_hanging_up(
    world: World,
) -> None:
    """FreeSWITCH: bridging the caller to the transfer target ends our media stream before
    the PBX reports the transfer; the caller must not be hung up as a media loss."""
    call_id = await world.answered_call()
    await until(lambda: "Hi!" in world.observer.transcripts)
    await world.engine.control.run(ACME_ID, call_id, Transfer("sales"))
    assert [c for c, _ in world.pbx.transfers] == [call_id]
    await world.fake.channel().ws.close()  # the stream ends as the bridge forms
    await asyncio.sleep(0.3)
    assert world.pbx.hangups == []  # waiting for the PBX's word
    await world.pbx.emit(call_id, PbxEventKind.TRANSFERRED, detail="sales")
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.call(call_id)
    assert (call.status, call.end_reason, call.transferred_to) == (
        CallStatus.ENDED,
        "transferred",
        "sales",
    )
    assert world.pbx.hangups == []


async def test_shutdown_hangs_up_running_calls_and_records_them(world: World) -> None:
    first = await world.answered_call()
    second = await world.answered_call()
    await until(lambda: len(world.fake.channels) == 2)
    await world.runner.aclose()
    await world.runner.aclose()  # idempotent
    for call_id in (first, second):
        call = await world.call(call_id)
        assert (call.status, call.end_reason) == (CallStatus.ENDED, SHUTDOWN)
    assert sorted(world.pbx.hangups) == sorted([(first, "normal"), (second, "normal")])
    assert sorted(r[0] for r in world.observer.reports) == sorted([first, second])
    await world.answered_call()  # a closed runner starts nothing
    assert [c for c, _ in world.pbx.media_formats] == [first, second]


async def test_one_failing_call_leaves_the_other_running(world: World) -> None:
    healthy = await world.answered_call()
    await until(lambda: len(world.fake.channels) == 1)
    world.pbx.fail_media = PbxError("boom")
    broken = await world.answered_call()
    async with asyncio.timeout(5):
        await call_finished(world.runner, broken)
    assert world.runner.served.get(healthy) is not None
    assert (await world.call(healthy)).status is CallStatus.IN_PROGRESS
    await world.engine.control.run(ACME_ID, healthy, Say("Still here."))
    await until(lambda: "Still here." in world.observer.transcripts)


async def test_media_format_from_assistant_then_trunk(world: World, store: MemoryStore) -> None:
    call_id = await world.answered_call()
    call = await world.call(call_id)
    assert await media_format(world.store, call) == "ulaw"
    call.assistant_config = msgspec.structs.replace(call.assistant_config, media_format="slin16")
    assert await media_format(world.store, call) == "slin16"
    call.assistant_config = AssistantConfig(media_format="alaw")
    assert await media_format(world.store, call) == "alaw"
    call.assistant_config = AssistantConfig(media_format="opus")  # not a telephone codec
    assert await media_format(world.store, call) == "ulaw"


async def test_media_format_is_the_codec_of_the_trunk_the_call_was_placed_on(
    world: World, store: MemoryStore
) -> None:
    call = await world.call(await world.answered_call())
    assert call.trunk is not None
    assert call.number_id is not None
    trunk = await store.get_trunk(call.trunk)
    assert trunk is not None
    async with store.transaction() as tx:
        await tx.upsert_trunk(dataclasses.replace(trunk, codec="alaw"))
    assert await media_format(store, call) == "alaw"
    # The call keeps its trunk: its number removed since, the trunk still carries it.
    async with store.transaction() as tx:
        assert await tx.delete_phone_number(call.organization_id, call.number_id)
    assert await media_format(store, call) == "alaw"
    # A call stored without its trunk (before calls kept it): its number's.
    call.trunk = None
    assert await media_format(store, call) == "ulaw"


TEST_PROVIDER = "runner-service-test"


@pytest.fixture
def test_providers() -> Iterator[tuple[FakeStt, FakeLlm, FakeTts]]:
    made = (FakeStt(), FakeLlm(), FakeTts(8000, ms_per_char=10))
    with registered(TEST_PROVIDER, *made):
        yield made


async def test_service_runs_answered_calls_and_hangs_them_up_before_closing_the_pbx(
    tmp_path: Path, test_providers: tuple[FakeStt, FakeLlm, FakeTts]
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'runner.db'}")
    settings.speech.stt = settings.speech.llm = settings.speech.tts = TEST_PROVIDER
    async with FakeAsterisk(send_audio=False) as fake:
        pbx = MediaFakePbx(fake)
        hangups_when_pbx_closed: list[int] = []
        close_pbx = pbx.aclose

        async def aclose() -> None:
            hangups_when_pbx_closed.append(len(pbx.hangups))
            await close_pbx()

        pbx.aclose = aclose  # type: ignore[method-assign]
        service = await Service.open(settings, pbx=pbx)
        try:
            request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
            call_id = str((await place_outbound(service.engine, ACME_ID, request)).body["call_id"])
            await pbx.answer(call_id)
            await until(lambda: bool(fake.channels) and bool(fake.channel().marks_processed))
            assert test_providers[2].texts == ["Hi!"]  # the first message, from the runner
        finally:
            await service.aclose()
            await service.aclose()
        assert hangups_when_pbx_closed == [1]
        assert pbx.hangups == [(call_id, "normal")]


async def test_service_without_a_media_pbx_starts_no_conversation(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'nopbx.db'}")
    service = await Service.open(settings)  # pbx.kind = none
    try:
        assert service.runner.media_pbx is None
        await service.runner.events.handle_pbx_event(
            PbxEvent("call-unknown", PbxEventKind.ANSWERED)
        )
        assert service.runner.served.get("call-unknown") is None
    finally:
        await service.aclose()


def test_client_media_mode_serves_the_endpoint_the_pbx_s_media_legs_dial() -> None:
    endpoint = MediaAcceptor()

    class ClientModePbx(MediaFakePbx):
        endpoint: MediaAcceptor | None = None

        def media_endpoint(self) -> MediaAcceptor | None:
            return self.endpoint

    pbx = ClientModePbx(media_server=None)
    assert service_module._media_endpoint(pbx) is None  # server mode: none needed
    pbx.endpoint = endpoint
    assert service_module._media_endpoint(pbx) is endpoint
    assert service_module._media_endpoint(MediaFakePbx(None)) is None  # cannot use it


async def test_provider_failure_mid_call_speaks_the_fallback_then_hangs_up(world: World) -> None:
    world.stt.error = ProviderError("stt down")
    call_id = await world.answered_call()
    await until(lambda: world.observer.transcripts == ["Hi!"])
    await world.caller_says(voiced(600) + silence(400))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call_id)
    call = await world.call(call_id)
    assert (call.status, call.end_reason) == (CallStatus.ENDED, PROVIDER_ERROR)
    assert world.observer.transcripts[-1] == FAST.fallback_message  # never silent
    assert world.pbx.hangups == [(call_id, "normal")]
    assert world.observer.reports == [(call_id, CallStatus.ENDED, 2)]


async def test_rest_call_runs_live_and_its_record_is_served(
    tmp_path: Path, test_providers: tuple[FakeStt, FakeLlm, FakeTts]
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'rest.db'}")
    settings.speech.stt = settings.speech.llm = settings.speech.tts = TEST_PROVIDER
    async with FakeAsterisk(send_audio=False) as fake:
        pbx = MediaFakePbx(fake)
        services: list[Service] = []

        async def factory() -> Service:
            services.append(await Service.open(settings, pbx=pbx))
            return services[0]

        client: TestClient[Any, Any] = TestClient(
            TestServer(create_app(settings, factory), host="127.0.0.1", port=0)
        )
        await client.start_server()
        try:
            key, _ = await issue_api_key(services[0].store, ACME)
            auth = {"Authorization": f"Bearer {key}"}
            body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
            resp = await client.post("/calls/outbound", json=body, headers=auth)
            call_id = str((await resp.json())["call_id"])
            await pbx.answer(call_id)
            await until(lambda: test_providers[2].texts == ["Hi!"])
            end = {"type": "end-call", "message": "Thank you, goodbye."}
            resp = await client.post(f"/calls/{call_id}/control", json=end, headers=auth)
            assert resp.status == 200
            async with asyncio.timeout(5):
                await call_finished(services[0].runner, call_id)
            call = await (await client.get(f"/calls/{call_id}", headers=auth)).json()
        finally:
            await client.close()
    assert (call["status"], call["end_reason"]) == ("ended", "api-end-call")
    assert [(m["role"], m["content"]) for m in call["messages"]] == [
        ("assistant", "Hi!"),
        ("assistant", "Thank you, goodbye."),
    ]


async def test_a_transfer_sent_at_the_answer_is_announced_once_the_conversation_runs(
    tmp_path: Path, test_providers: tuple[FakeStt, FakeLlm, FakeTts]
) -> None:
    """A transfer sent the moment the call is in progress, its media leg still being set up,
    waits for the conversation: the caller hears the announcement, then the PBX transfers
    (it used to go to the PBX at once, unannounced, while the PBX was still bridging the
    caller to the media)."""
    settings = make_settings(f"sqlite:///{tmp_path / 'rest.db'}")
    settings.speech.stt = settings.speech.llm = settings.speech.tts = TEST_PROVIDER
    tts = test_providers[2]
    announcement = "I am putting you through to my supervisor."
    async with FakeAsterisk(send_audio=False) as fake:
        pbx = MediaFakePbx(fake)
        pbx.media_opens = asyncio.Event()  # the media leg is still being set up
        spoken_before_transfer: list[list[str]] = []
        transfer = pbx.transfer

        async def transfer_after(call_id: str, target: TransferTarget) -> None:
            spoken_before_transfer.append(list(tts.texts))
            await transfer(call_id, target)

        pbx.transfer = transfer_after  # type: ignore[method-assign]
        client, service = await start_app(settings, pbx)
        try:
            key, _ = await issue_api_key(service.store, ACME)
            auth = {"Authorization": f"Bearer {key}"}
            body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
            resp = await client.post("/calls/outbound", json=body, headers=auth)
            call_id = str((await resp.json())["call_id"])
            await pbx.answer(call_id)
            await until(lambda: (call_id, "ulaw") in pbx.media_formats)  # being set up
            command = {
                "type": "transfer",
                "destination": "sales",
                "mode": "warm",
                "announcement": announcement,
            }
            sent = asyncio.create_task(
                client.post(f"/calls/{call_id}/control", json=command, headers=auth)
            )
            async with asyncio.timeout(5):  # the command is taken while the media opens
                while not any(
                    e.type == "control" for e in await service.store.list_events(call_id)
                ):
                    await asyncio.sleep(0.005)
            pbx.media_opens.set()
            resp = await sent
            assert resp.status == 200, await resp.text()
            assert [c for c, _ in pbx.transfers] == [call_id]
            await pbx.emit(call_id, PbxEventKind.TRANSFERRED, detail="sales")
            async with asyncio.timeout(5):
                await call_finished(service.runner, call_id)
            call = await (await client.get(f"/calls/{call_id}", headers=auth)).json()
        finally:
            await client.close()
    assert spoken_before_transfer == [["Hi!", announcement]]  # heard to its end, then the PBX
    assert (call["status"], call["end_reason"]) == ("ended", "transferred")
    assert ("assistant", announcement) in [(m["role"], m["content"]) for m in call["messages"]]


# ---- a call resumed after a restart (calls/recovery.py) ----------------------------------------


async def left_by_a_killed_run(world: World) -> tuple[Call, list[CallMessage]]:
    """An answered call the previous run greeted (no runner of this run serves it yet)."""
    request = outbound_request({"destination": DESTINATION, "assistant_id": SUPPORT_ID})
    call_id = str((await place_outbound(world.engine, ACME_ID, request)).body["call_id"])
    await world.engine.pbx_events.apply(PbxEvent(call_id, PbxEventKind.ANSWERED))
    await world.engine.records.store_transcript_turn(call_id, Turn("assistant", "Hi!"))
    return await world.call(call_id), await world.store.list_messages(call_id)


async def test_a_resumed_call_says_the_resume_line_and_goes_on_with_its_history(
    world: World,
) -> None:
    call, earlier = await left_by_a_killed_run(world)
    world.stt.texts = ["I would like an appointment on Monday."]
    world.llm.replies = ["Monday at nine works."]
    config = resumed_config(call.assistant_config, earlier, "Sorry, we were cut off.")
    resumed = dataclasses.replace(call, assistant_config=config)
    assert await world.runner.resuming.resume(resumed, earlier)
    await until(lambda: world.observer.transcripts[-1:] == ["Sorry, we were cut off."])
    await world.caller_says(voiced(600) + silence(400))
    await until(lambda: world.observer.transcripts[-1:] == ["Monday at nine works."])
    # The model saw the conversation from before the gap, then the resume line.
    seen = [(m.role, m.content) for m in world.llm.calls[0] if m.role != "system"]
    assert seen == [
        ("assistant", "Hi!"),
        ("assistant", "Sorry, we were cut off."),
        ("user", "I would like an appointment on Monday."),
    ]
    await world.engine.control.run(ACME_ID, call.id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call.id)
    stored = [m.content for m in await world.store.list_messages(call.id)]
    assert stored[:2] == ["Hi!", "Sorry, we were cut off."]  # after the earlier ones
    assert stored.count("Hi!") == 1
    # The end-of-call report holds the whole conversation, before and after the gap.
    assert world.observer.reports == [(call.id, CallStatus.ENDED, len(stored))]


async def test_a_call_served_already_is_not_resumed_a_second_time(world: World) -> None:
    call, earlier = await left_by_a_killed_run(world)
    config = resumed_config(call.assistant_config, earlier, "Sorry, we were cut off.")
    resumed = dataclasses.replace(call, assistant_config=config)
    assert await world.runner.resuming.resume(resumed, earlier)
    first = world.runner.served.get(call.id)
    assert not await world.runner.resuming.resume(resumed, earlier)
    assert world.runner.served.get(call.id) is first  # the running conversation kept
    assert len(world.pbx.media_formats) == 1  # one media leg, not two
    await world.engine.control.run(ACME_ID, call.id, EndCall(None))
    async with asyncio.timeout(5):
        await call_finished(world.runner, call.id)
    stored = [m.content for m in await world.store.list_messages(call.id)]
    assert stored.count("Hi!") == 1  # the earlier messages carried once
    assert world.observer.reports == [(call.id, CallStatus.ENDED, len(stored))]


async def test_a_resumed_call_whose_media_does_not_open_ends_service_restart(
    world: World,
) -> None:
    call, earlier = await left_by_a_killed_run(world)
    world.pbx.fail_media = PbxError("externalMedia refused")
    config = resumed_config(call.assistant_config, earlier, "Sorry, we were cut off.")
    resumed = dataclasses.replace(call, assistant_config=config)
    assert not await world.runner.resuming.resume(resumed, earlier)
    async with asyncio.timeout(5):
        await call_finished(world.runner, call.id)
    ended = await world.call(call.id)
    assert (ended.status, ended.end_reason) == (CallStatus.ENDED, SERVICE_RESTART)
    assert world.pbx.hangups == [(call.id, "normal")]
    assert world.observer.reports == [(call.id, CallStatus.ENDED, 1)]  # "Hi!" from before


async def test_a_call_whose_caller_left_before_the_resume_is_not_served(world: World) -> None:
    call, earlier = await left_by_a_killed_run(world)
    await world.engine.pbx_events.apply(PbxEvent(call.id, PbxEventKind.HANGUP, cause=16))
    config = resumed_config(call.assistant_config, earlier, "Sorry, we were cut off.")
    resumed = dataclasses.replace(call, assistant_config=config)
    assert not await world.runner.resuming.resume(resumed, earlier)
    assert world.runner.served.get(call.id) is None
    assert world.pbx.media_formats == []  # no media leg opened
    assert len(world.observer.reports) == 1  # the end's report, once
