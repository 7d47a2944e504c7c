"""LiveConversation over the in-process chan_websocket endpoint, with scripted providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from media.fake_asterisk import FakeAsterisk
from pipeline.fakes import FakeLlm, FakeStt, FakeTts
from pipeline.synth import silence, voiced
from voicedock.calls.live.conversation import (
    LiveConversation,
    LiveOptions,
    LiveParts,
    LiveTransferUnsupported,
    SpeechProviders,
)
from voicedock.domain.assistant_config import config_of
from voicedock.errors import PbxError
from voicedock.media.codecs import ulaw_encode
from voicedock.pbx.asterisk.media.session import MediaSession
from voicedock.pbx.base import TransferTarget
from voicedock.pipeline.dialogue.events import CallEvent, TranscriptKept
from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.providers.base import ProviderTimeoutError
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

pytestmark = pytest.mark.unit

ENDPOINTING = EndpointingConfig(
    end_silence_ms=300, barge_in_speech_ms=200, silence_timeout_ms=None, max_duration_ms=None
)
FRAME = 160  # 20 ms of µ-law at 8 kHz


@dataclass
class Call:
    fake: FakeAsterisk
    media: MediaSession
    stt: FakeStt
    llm: FakeLlm
    tts: FakeTts

    def live(
        self,
        assistant: dict[str, object] | None = None,
        *,
        context: str | None = None,
        endpointing: EndpointingConfig = ENDPOINTING,
        **options: object,
    ) -> LiveConversation:
        config = ConversationConfig(endpointing=endpointing, **options)  # type: ignore[arg-type]
        return LiveConversation(
            self.media,
            config_of(assistant or {}),
            LiveOptions(context=context, config=config),
            LiveParts(providers=SpeechProviders(self.stt, self.llm, self.tts)),
        )

    async def caller_says(self, pcm: bytes) -> None:
        """Send 8 kHz PCM as µ-law frames (audio time drives the endpointer, so no pacing)."""
        wire = ulaw_encode(pcm)
        ws = self.fake.channel().ws
        for start in range(0, len(wire) - FRAME + 1, FRAME):
            await ws.send_bytes(wire[start : start + FRAME])
            await asyncio.sleep(0.001)

    async def utterance(self, speech_ms: int = 600, pause_ms: int = 400) -> None:
        await self.caller_says(voiced(speech_ms) + silence(pause_ms))


@pytest.fixture
async def call() -> AsyncIterator[Call]:
    async with (
        FakeAsterisk(send_audio=False) as fake,
        MediaSession.connect(fake.url(), send_silence=False) as media,
    ):
        yield Call(fake, media, FakeStt(), FakeLlm(), FakeTts(8000, ms_per_char=10))


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_first_message_reaches_asterisk_as_paced_frames(call: Call) -> None:
    async with call.live({"first_message": "Hello there."}) as live:
        await until(lambda: len(live.transcript) == 1)
    (entry,) = live.transcript
    assert (entry.role, entry.content, entry.interrupted) == ("assistant", "Hello there.", False)
    channel = call.fake.channel()
    pcm = b"\x10\x00" * (8000 * 10 * len("Hello there.") // 1000)  # what FakeTts produced
    assert b"".join(channel.played) == ulaw_encode(pcm)  # 6 frames, byte-exact
    assert call.media.pacer.stats.speech_frames == 6
    assert entry.ended_at - entry.started_at >= 0.1  # one frame per 20 ms, confirmed by mark


async def test_caller_utterance_becomes_the_user_transcript(call: Call) -> None:
    call.stt.texts = ["What are your hours?"]
    call.llm.replies = ["We open at nine."]
    async with call.live(context="Caller: Margaret.") as live:
        await call.utterance()
        await until(lambda: len(live.transcript) == 2)
    assert live.result is not None
    assert [(e.role, e.content) for e in live.result.transcript] == [
        ("user", "What are your hours?"),
        ("assistant", "We open at nine."),
    ]
    assert 4_000 <= call.stt.calls[0] <= 16_000  # ~0.6 s of 8 kHz pcm16 (pre-roll, tail)
    assert "Margaret" in call.llm.calls[0][0].content
    (latency,) = live.result.latencies
    assert latency.endpointing_ms == 300
    assert latency.first_frame_sent_ms is not None
    assert live.result.latency_records()[0]["endpointing_ms"] == 300
    assert live.result.end_reason == "closed"
    assert live.result.analysis.method == "heuristic"  # FakeLlm does not answer in JSON
    assert "HANGUP" in call.fake.channel().commands  # closing the call hangs it up


async def test_listeners_hear_each_kept_message_in_order_and_a_failing_one_is_contained(
    call: Call, caplog: pytest.LogCaptureFixture
) -> None:
    call.stt.texts = ["What are your hours?"]
    call.llm.replies = ["We open at nine."]
    kept: list[tuple[str, str]] = []

    async def slow_store(event: CallEvent) -> None:
        assert isinstance(event, TranscriptKept)
        await asyncio.sleep(0.05)  # a slow store never holds the call up
        kept.append((event.entry.role, event.entry.content))

    async def broken(_event: CallEvent) -> None:
        raise RuntimeError("listener")

    live = call.live({"first_message": "Hello."})
    live.events.listen(slow_store, TranscriptKept)
    live.events.listen(broken, TranscriptKept)
    async with live:
        await until(lambda: len(live.transcript) == 1)
        await call.utterance()
        await until(lambda: len(live.transcript) == 3)
        assert live.end_reason is None  # the failing listener ended nothing
    # closed: every kept message was handed over, in spoken order
    assert kept == [
        ("assistant", "Hello."),
        ("user", "What are your hours?"),
        ("assistant", "We open at nine."),
    ]
    assert live.result is not None
    assert live.result.end_reason == "closed"
    failures = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert failures == ["live call: TranscriptKept listener failed"] * 3


async def test_barge_in_flushes_asterisk_and_cuts_the_stored_message(call: Call) -> None:
    call.stt.texts = ["Stop."]
    call.llm.replies = ["Okay."]
    long = "One two three four five six seven eight nine ten eleven twelve thirteen."
    async with call.live({"first_message": long}) as live:
        await until(lambda: len(call.fake.channel().played) >= 10)
        await call.utterance()
        await until(lambda: any(e.role == "user" for e in live.transcript))
    first = live.transcript[0]
    assert first.role == "assistant"
    assert first.interrupted
    assert 0 < len(first.content) < len(long)
    assert long.startswith(first.content)
    assert "FLUSH_MEDIA" in call.fake.channel().commands
    assert len(call.fake.channel().played) < 8000 * 10 * len(long) // 1000 // FRAME


async def test_say_inject_context_and_end_call_after_the_final_mark(call: Call) -> None:
    call.llm.replies = ["Sorry about the delay."]
    async with call.live() as live:
        await live.say("Your order shipped.")
        await until(lambda: len(live.transcript) == 1)
        await live.inject_context("Order 42 is late.", trigger_response=True)
        await until(lambda: len(live.transcript) == 2)
        await live.end_call("Goodbye now.")
        assert await asyncio.wait_for(live.wait_ended(), 3.0) == "end-call"
    assert [e.content for e in live.transcript] == [
        "Your order shipped.",
        "Sorry about the delay.",
        "Goodbye now.",
    ]
    assert any(m.content == "Order 42 is late." for m in call.llm.calls[0])
    channel = call.fake.channel()
    commands = channel.commands
    assert commands[-1] == "HANGUP"
    final_mark = next(
        c.split(" ", 1)[1]
        for c in reversed(commands)
        if c.startswith("MARK_MEDIA ") and "@" not in c
    )
    assert final_mark in channel.marks_processed  # played to the end before the hang-up
    assert len(channel.played) == call.media.pacer.stats.speech_frames
    assert live.result is not None
    assert live.result.end_reason == "end-call"
    await live.say("too late")  # the call is over: nothing happens, nothing raises


async def test_end_call_hangs_up_before_the_callers_last_words_are_transcribed(
    call: Call,
) -> None:
    """The caller is talking when the call is ended: the line is hung up at once; their words
    are transcribed after (a slow STT does not keep them on an open line)."""
    call.stt = FakeStt(["I still wanted to say"], delay=1.5)
    live = call.live()
    running = asyncio.create_task(live.run())
    await call.caller_says(voiced(600))  # no pause: the utterance is not over
    await live.end_call(None)
    await until(lambda: "HANGUP" in call.fake.channel().commands, timeout=1.0)
    assert not running.done()  # still transcribing what the caller was saying
    result = await asyncio.wait_for(running, 5.0)
    assert result.end_reason == "end-call"
    assert [(e.role, e.content) for e in result.transcript] == [("user", "I still wanted to say")]


async def test_media_loss_ends_the_call_as_media_lost(call: Call) -> None:
    long = "This is a long greeting that will not finish because the line drops. " * 3
    live = call.live({"first_message": long})
    running = asyncio.create_task(live.run())
    await until(lambda: len(call.fake.channel().played) >= 3)
    await call.fake.channel().ws.close()
    result = await asyncio.wait_for(running, 3.0)
    assert result.end_reason == "media-lost"
    assert "HANGUP" not in call.fake.channel().commands


async def test_silence_timeout_says_goodbye_and_hangs_up(call: Call) -> None:
    endpointing = EndpointingConfig(end_silence_ms=300, silence_timeout_ms=400)
    async with call.live(endpointing=endpointing, silence_timeout_message="Bye.") as live:
        await call.caller_says(silence(600))
        assert await asyncio.wait_for(live.wait_ended(), 3.0) == "silence-timeout"
    assert [e.content for e in live.transcript] == ["Bye."]
    assert call.fake.channel().commands[-1] == "HANGUP"


async def test_a_caller_who_sends_nothing_times_out_on_the_clock(call: Call) -> None:
    """The far end sends no frame at all (silence suppression): its silence is timed all the
    same, on the clock."""
    endpointing = EndpointingConfig(end_silence_ms=300, silence_timeout_ms=600)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with call.live(endpointing=endpointing, silence_timeout_message="Bye.") as live:
        assert await asyncio.wait_for(live.wait_ended(), 3.0) == "silence-timeout"
        assert 0.55 <= loop.time() - started <= 1.2
    assert call.media.caller.inbound_frames == 0
    assert [e.content for e in live.transcript] == ["Bye."]


async def test_a_transfer_under_way_holds_the_silence_timeout_until_it_fails(
    call: Call,
) -> None:
    """The caller leaves our media for the PBX (ringing the target, on hold): nothing comes
    and nothing counts as their silence, until the assistant says the transfer failed."""
    endpointing = EndpointingConfig(end_silence_ms=300, silence_timeout_ms=600)
    async with call.live(endpointing=endpointing, silence_timeout_message="Bye.") as live:
        await live.transfer(TransferTarget("+15551234567"), "Connecting you now.", None)
        await asyncio.sleep(1.5)  # the target rings
        assert live.end_reason is None
        loop = asyncio.get_running_loop()
        await live.say("Sorry, the transfer did not work.")
        said = loop.time()
        assert await asyncio.wait_for(live.wait_ended(), 5.0) == "silence-timeout"
        assert loop.time() - said >= 0.6
    assert [e.content for e in live.transcript][-1] == "Bye."


async def test_provider_failure_speaks_the_fallback_and_ends(call: Call) -> None:
    call.stt.error = ProviderTimeoutError("stt down")
    async with call.live(fallback_message="Sorry, goodbye.") as live:
        await call.utterance()
        assert await asyncio.wait_for(live.wait_ended(), 3.0) == "provider-error"
    assert call.tts.texts == ["Sorry, goodbye."]
    assert [e.content for e in live.transcript] == ["Sorry, goodbye."]
    assert call.fake.channel().commands[-1] == "HANGUP"


async def test_a_crashing_call_task_ends_the_call_and_hangs_up(
    call: Call, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: TurnEngine, digit: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(TurnEngine, "feed_dtmf", broken)
    async with call.live() as live:
        await call.fake.channel().ws.send_str("DTMF_END digit:5")
        assert await asyncio.wait_for(live.wait_ended(), 3.0) == "internal-error"
    assert call.fake.channel().commands[-1] == "HANGUP"
    assert "live call: background task crashed" in caplog.text


async def test_dtmf_reaches_the_model_as_one_keypad_turn(call: Call) -> None:
    call.llm.replies = ["Noted."]
    async with call.live() as live:
        for digit in "52#":
            await call.fake.channel().ws.send_str(f"DTMF_END digit:{digit}")
        await until(lambda: len(live.transcript) == 2)
    assert [m.content for m in call.llm.calls[0] if m.role == "user"] == ["Keypad: 52#"]
    assert [(e.role, e.content) for e in live.transcript] == [
        ("user", "Keypad: 52#"),
        ("assistant", "Noted."),
    ]


async def test_transfer_speaks_the_announcement_and_briefs_a_warm_target(call: Call) -> None:
    async with call.live() as live:
        blind = TransferTarget("+15551234567")
        await live.transfer(blind, "Connecting you now.", None)
        assert "Connecting you now." in call.tts.texts
        assert blind.extra == {}
        warm = TransferTarget("sales", internal=True, mode="warm")
        await live.transfer(warm, None, "Invoice question, customer 42.")
    assert warm.extra == {"briefing": "Invoice question, customer 42."}
    assert issubclass(LiveTransferUnsupported, PbxError)
    assert issubclass(LiveTransferUnsupported, NotImplementedError)


async def test_offline_warm_transfer_briefs_the_agent_with_the_context(call: Call) -> None:
    call.stt.texts = ["My invoice is wrong."]
    live = LiveConversation(
        call.media,
        config_of({}),
        LiveOptions(
            context="Invoice question, customer 42.",
            config=ConversationConfig(endpointing=ENDPOINTING),
        ),
        LiveParts(providers=SpeechProviders(call.stt, RuleBasedPolicy(), call.tts)),
    )
    async with live:
        await call.utterance()
        await until(lambda: len(live.transcript) == 2)
        warm = TransferTarget("sales", internal=True, mode="warm")
        await live.transfer(warm, None, None)
    assert warm.extra["briefing"] == (
        "Transferring a caller: Invoice question, customer 42. "
        "Their last words were: My invoice is wrong."
    )


async def test_transfer_announcement_is_in_the_transcript_as_it_is_heard(call: Call) -> None:
    delivered: list[tuple[str, str]] = []

    async def kept(event: CallEvent) -> None:
        assert isinstance(event, TranscriptKept)
        delivered.append((event.entry.role, event.entry.content))

    call.stt.texts = ["Sales please."]
    live = LiveConversation(
        call.media,
        config_of({}),
        LiveOptions(config=ConversationConfig(endpointing=ENDPOINTING)),
        LiveParts(providers=SpeechProviders(call.stt, call.llm, call.tts)),
    )
    live.events.listen(kept, TranscriptKept)
    async with live:
        await call.utterance()
        await until(lambda: len(live.transcript) == 2)
        warm = TransferTarget("sales", internal=True, mode="warm")
        await live.transfer(warm, "Connecting you to sales.", "Wants sales.")
        assert live.transcript[-1].content == "Connecting you to sales."
        assert not live.transcript[-1].interrupted
        await until(lambda: ("assistant", "Connecting you to sales.") in delivered)
    assert warm.extra == {"briefing": "Wants sales."}
    assert delivered[0] == ("user", "Sales please.")
