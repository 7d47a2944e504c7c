from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from voicedock.pipeline.dialogue.turn_engine import ConversationConfig, TurnEngine, TurnParts
from voicedock.pipeline.frames import TranscriptEntry
from voicedock.pipeline.hearing.endpointing import EndpointingConfig
from voicedock.pipeline.providers.base import ProviderTimeoutError, ProviderUnavailableError

from .fakes import FakeHandle, FakeLlm, FakeSink, FakeStt, FakeTts, told_into
from .synth import frames, silence, voiced

pytestmark = pytest.mark.unit

ENDPOINTING = EndpointingConfig(
    end_silence_ms=300, barge_in_speech_ms=200, silence_timeout_ms=None, max_duration_ms=None
)


def config(**overrides: object) -> ConversationConfig:
    base: dict[str, object] = {"endpointing": ENDPOINTING, "system_prompt": "Be brief."}
    base.update(overrides)
    return ConversationConfig(**base)  # type: ignore[arg-type]


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.001)


def speak(conv: TurnEngine, speech_ms: int = 600, pause_ms: int = 400) -> None:
    for frame in frames(voiced(speech_ms) + silence(pause_ms)):
        conv.feed_audio(frame)


async def test_turn_end_to_end_with_transcript_and_latency() -> None:
    stt, llm, tts, sink = (
        FakeStt(["What are your hours?"]),
        FakeLlm(),
        FakeTts(),
        FakeSink(instant=True),
    )
    llm.replies = [["We open ", "at nine. ", "Bye for ", "now."]]
    cfg = config(first_message="Hi, dental clinic.", context="Caller: Margaret.")
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), cfg) as conv:
        await until(lambda: len(conv.transcript) == 1)
        speak(conv)
        await until(lambda: len(conv.transcript) == 3)
    roles = [(e.role, e.content, e.interrupted) for e in conv.transcript]
    assert roles == [
        ("assistant", "Hi, dental clinic.", False),
        ("user", "What are your hours?", False),
        ("assistant", "We open at nine. Bye for now.", False),
    ]
    assert tts.texts[1:] == ["We open at nine.", "Bye for now."]  # sentence by sentence
    assert set(sink.rates) == {8000}
    context = llm.calls[0]
    assert context[0].role == "system"
    assert "Be brief." in context[0].content
    assert "Margaret" in context[0].content
    assert [m.role for m in context[1:]] == ["assistant", "user"]
    user = conv.transcript[1]
    assert 0.5 <= user.ended_at - user.started_at <= 0.8
    (latency,) = conv.latencies
    assert latency.endpointing_ms == 300
    assert latency.stt_final_ms is not None
    assert latency.llm_first_token_ms is not None
    assert latency.tts_first_audio_ms is not None
    assert latency.first_frame_sent_ms is not None
    assert latency.stt_final_ms <= latency.llm_first_token_ms <= latency.first_frame_sent_ms
    assert conv.end_reason == "closed"


async def test_barge_in_flushes_and_keeps_only_what_was_heard() -> None:
    stt, tts, sink = FakeStt(["Tell me everything.", "Stop."]), FakeTts(ms_per_char=20), FakeSink()
    llm = FakeLlm(["One two three four five six seven eight. Nine ten eleven twelve."])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), config()) as conv:
        speak(conv)
        await until(lambda: len(sink.handles) == 2)
        assert conv.assistant_audible
        first = sink.handles[0]
        sink.advance(first.duration_ms / 2)  # half of the first sentence was heard
        speak(conv, speech_ms=400, pause_ms=400)
        await until(lambda: len(conv.transcript) >= 3)
        sink.play_all()
        await until(lambda: len(conv.transcript) == 4)
    assert all(h.flushed for h in sink.handles[:2])
    cut = conv.transcript[1]
    assert cut.role == "assistant"
    assert cut.interrupted
    assert cut.content == "One two three four"
    assert conv.transcript[2].content == "Stop."
    # the model sees the cut message, not what it had planned to say
    assert [m.content for m in llm.calls[1][1:]] == ["Tell me everything.", cut.content, "Stop."]


async def test_short_blip_while_assistant_speaks_is_not_a_barge_in() -> None:
    stt, sink = FakeStt(["Hello."]), FakeSink()
    llm = FakeLlm(["A long answer that keeps going for a while."])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), config()) as conv:
        speak(conv)
        await until(lambda: conv.assistant_audible)
        for frame in frames(voiced(100) + silence(400)):  # echo / "uh-huh"
            conv.feed_audio(frame)
        await asyncio.sleep(0.02)
        sink.play_all()
        await until(lambda: len(conv.transcript) == 2)
    assert not conv.transcript[1].interrupted
    assert not any(h.flushed for h in sink.handles)
    assert len(stt.calls) == 1


async def test_speech_during_thinking_merges_into_one_turn() -> None:
    stt, sink = FakeStt(["I want to move my appointment."], delay=0.2), FakeSink(instant=True)
    llm = FakeLlm(["Sure."])
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), config()) as conv:
        speak(conv, speech_ms=400)
        await until(lambda: len(stt.calls) == 1)
        speak(conv, speech_ms=400)  # caller continues before the answer
        await until(lambda: len(conv.transcript) == 2)
    assert len(stt.calls) == 2
    assert stt.calls[1] > stt.calls[0]  # the second transcription got both utterances
    assert [e.role for e in conv.transcript] == ["user", "assistant"]


async def test_say_inject_context_and_end_call() -> None:
    llm, sink = FakeLlm(), FakeSink(instant=True)
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=llm, tts=FakeTts(), sink=sink), config()
    ) as conv:
        await conv.say("Please hold.")
        await conv.inject_context("Customer verified.", trigger_response=False)
        await conv.inject_context("Code is 4411.", trigger_response=True)
        await until(lambda: len(conv.transcript) == 2)
        await conv.end_call("Goodbye now.")
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "end-call"
    contents = [e.content for e in conv.transcript]
    assert contents == ["Please hold.", "You said Code is 4411..", "Goodbye now."]
    assert [(m.role, m.content) for m in llm.calls[0][1:]] == [
        ("assistant", "Please hold."),
        ("system", "Customer verified."),
        ("system", "Code is 4411."),
    ]


async def test_a_whisper_acknowledged_is_in_the_transcript_even_if_the_call_ends_at_once() -> None:
    # The control command answers "Command sent" when it returns: a supervisor's whisper is
    # then the call's, even when the caller hangs up before the engine's next event.
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=FakeSink(instant=True)),
        config(),
    ) as conv:
        await conv.inject_context("Offer a callback.", source="supervisor")
    assert [(e.role, e.content) for e in conv.transcript] == [("supervisor", "Offer a callback.")]


async def test_end_call_lets_current_speech_finish() -> None:
    sink = FakeSink()
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=sink), config()
    ) as conv:
        await conv.say("First I finish this sentence.")
        await until(lambda: len(sink.handles) == 1)
        await conv.end_call("Bye.")
        await asyncio.sleep(0.02)
        assert conv.end_reason is None
        sink.play_all()
        await until(lambda: len(sink.handles) == 2)
        sink.play_all()
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "end-call"
    assert not sink.handles[0].flushed
    assert [e.content for e in conv.transcript] == ["First I finish this sentence.", "Bye."]


async def test_silence_timeout_says_goodbye_and_ends() -> None:
    cfg = config(
        endpointing=EndpointingConfig(silence_timeout_ms=400, max_duration_ms=None),
        silence_timeout_message="Are you there? Goodbye.",
    )
    sink = FakeSink(instant=True)
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=sink), cfg
    ) as conv:
        for frame in frames(silence(500)):
            conv.feed_audio(frame)
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "silence-timeout"
    assert conv.transcript[-1].content == "Are you there? Goodbye."


async def test_silence_prompt_is_said_before_the_silence_timeout_ends_the_call() -> None:
    cfg = config(
        endpointing=EndpointingConfig(
            silence_prompt_ms=200, silence_timeout_ms=600, max_duration_ms=None
        ),
        silence_prompt_message="Hello, are you still there?",
        silence_timeout_message="Goodbye.",
    )
    sink = FakeSink(instant=True)
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=sink), cfg
    ) as conv:
        for frame in frames(silence(300)):
            conv.feed_audio(frame)
        await until(lambda: len(conv.transcript) == 1)
        for frame in frames(silence(700)):
            conv.feed_audio(frame)
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "silence-timeout"
    spoken = [e.content for e in conv.transcript]
    assert spoken == ["Hello, are you still there?", "Goodbye."]


async def test_a_stalled_reply_is_covered_then_spoken() -> None:
    stt, llm, sink = FakeStt(["Can you check my order?"]), FakeLlm(), FakeSink(instant=True)
    llm.replies = [["Your order ships today."]]
    llm.first_token_delay = 0.5
    cfg = config(dead_air_s=0.2, dead_air_message="One moment, please.")
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 3)
    spoken = [(e.role, e.content) for e in conv.transcript]
    assert spoken == [
        ("user", "Can you check my order?"),
        ("assistant", "One moment, please."),
        ("assistant", "Your order ships today."),
    ]
    # The cover is voicedock's, not the model's: the model never sees it.
    assert [m.content for m in conv.history] == ["Can you check my order?", spoken[2][1]]


async def test_a_prompt_reply_is_not_covered() -> None:
    stt, llm, sink = FakeStt(["Hi."]), FakeLlm(), FakeSink(instant=True)
    llm.replies = [["Hello."]]
    cfg = config(dead_air_s=0.2)
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        speak(conv)
        await until(lambda: len(conv.transcript) == 2)
        await asyncio.sleep(0.3)
    assert [e.content for e in conv.transcript] == ["Hi.", "Hello."]


async def test_max_duration_ends_without_speech() -> None:
    cfg = config(endpointing=EndpointingConfig(max_duration_ms=200, silence_timeout_ms=None))
    sink = FakeSink(instant=True)
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=sink), cfg
    ) as conv:
        for frame in frames(voiced(300)):
            conv.feed_audio(frame)
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "max-duration"
    assert sink.handles == []


@pytest.mark.parametrize("broken", ["stt", "llm_error", "llm_slow"])
async def test_provider_failure_speaks_fallback_then_ends(broken: str) -> None:
    stt, llm, sink = FakeStt(["Hello?"]), FakeLlm(), FakeSink(instant=True)
    if broken == "stt":
        stt.error = ProviderUnavailableError("no model")
    elif broken == "llm_error":
        llm.error = ProviderTimeoutError("upstream 504")
    else:
        llm.first_token_delay = 5.0
    cfg = config(llm_first_token_timeout_s=0.05, fallback_message="Sorry, technical trouble.")
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink), cfg) as conv:
        speak(conv)
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "provider-error"
    assert conv.transcript[-1].content == "Sorry, technical trouble."


async def test_a_turn_whose_transcription_failed_is_tried_once_more_for_the_record() -> None:
    stt = FakeStt(["Hello?"])
    stt.error = ProviderUnavailableError("model busy")
    cfg = config(fallback_message="Sorry, technical trouble.")
    async with TurnEngine(
        TurnParts(stt=stt, llm=FakeLlm(), tts=FakeTts(), sink=FakeSink(instant=True)), cfg
    ) as conv:
        speak(conv)
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "provider-error"
        stt.error = None  # the provider is back by the time the call closes
    assert [(e.role, e.content) for e in conv.transcript] == [
        ("user", "Hello?"),  # in spoken order: the caller spoke first
        ("assistant", "Sorry, technical trouble."),
    ]
    assert len(stt.calls) == 2
    assert stt.most_running == 1


async def test_tts_failure_still_ends_call() -> None:
    tts = FakeTts()
    tts.error = ProviderUnavailableError("voice missing")
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=tts, sink=FakeSink()), config()
    ) as conv:
        await conv.say("Hello.")
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "provider-error"
    # The say was never spoken: recorded as interrupted at 0 words, not silently dropped.
    assert [(e.role, e.content, e.interrupted) for e in conv.transcript] == [
        ("assistant", "", True)
    ]


async def test_aclose_is_idempotent_and_stops_speech() -> None:
    sink = FakeSink()
    conv = TurnEngine(TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=sink), config())
    async with conv:
        await conv.say("A sentence that will be cut.")
        await until(lambda: len(sink.handles) == 1)
        await conv.aclose()
        await conv.aclose()
        assert sink.handles[0].flushed
        conv.feed_audio(voiced(20))  # ignored after close
    assert await conv.wait_ended() == "closed"


class BrokenSink(FakeSink):
    async def play(self, pcm: bytes, sample_rate: int) -> FakeHandle:
        raise RuntimeError("media socket gone")


async def test_broken_sink_still_ends_the_call() -> None:
    conv = TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=BrokenSink()), config()
    )
    async with conv:
        await conv.say("Hello.")
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "internal-error"


# ---- a say is never lost; the transcript is complete and in spoken order ----------------


async def test_say_queued_behind_the_greeting_survives_a_barge_in_and_is_spoken() -> None:
    stt, tts, sink = FakeStt(["Hello? Hello?"]), FakeTts(), FakeSink()
    llm = FakeLlm(["How can I help?"])
    cfg = config(first_message="Welcome to the city library, how can I help you today?")
    async with TurnEngine(TurnParts(stt=stt, llm=llm, tts=tts, sink=sink), cfg) as conv:
        await until(lambda: conv.assistant_audible)
        await conv.say("Your book has arrived.")
        await asyncio.sleep(0.01)
        speak(conv)  # the line's far side talks over the greeting (echo, speakerphone)
        await until(lambda: len(conv.transcript) >= 2)
        assert not any(e.content == "Your book has arrived." for e in conv.transcript)

        def spoken() -> bool:
            sink.play_all()
            return any(e.content == "Your book has arrived." for e in conv.transcript)

        await until(spoken)
    said = [(e.role, e.content, e.interrupted) for e in conv.transcript]
    assert said[0] == ("assistant", "", True)  # the greeting, cut before its first word
    assert said[1] == ("user", "Hello? Hello?", False)
    assert said[2] == ("assistant", "Your book has arrived.", False)  # after the caller's turn
    assert "Your book has arrived." in tts.texts


async def test_greeting_cut_before_its_first_word_is_still_recorded() -> None:
    received: list[TranscriptEntry] = []
    stt, sink = FakeStt(["Hi."]), FakeSink()
    cfg = config(first_message="Hello, this is the dental clinic.")
    async with TurnEngine(
        TurnParts(
            stt=stt, llm=FakeLlm(["Yes?"]), tts=FakeTts(), sink=sink, events=told_into(received)
        ),
        cfg,
    ) as conv:
        await until(lambda: conv.assistant_audible)
        speak(conv)
        await until(lambda: len(conv.transcript) >= 2)
        sink.play_all()
    assert conv.transcript[0].role == "assistant"
    assert (conv.transcript[0].content, conv.transcript[0].interrupted) == ("", True)
    assert (received[0].role, received[0].content, received[0].interrupted) == (
        "assistant",
        "",
        True,
    )


async def test_a_queued_say_cancelled_by_the_end_of_the_call_is_recorded_at_zero_words() -> None:
    sink = FakeSink()
    cfg = config(first_message="Welcome to the city library, how can I help you today?")
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=FakeTts(), sink=sink), cfg
    ) as conv:
        await until(lambda: conv.assistant_audible)
        await conv.say("Your book has arrived.")
        await asyncio.sleep(0.01)
    assert [(e.content, e.interrupted) for e in conv.transcript] == [("", True), ("", True)]


async def test_transcript_and_its_events_are_in_spoken_order() -> None:
    """A say spoken while the caller's turn is being transcribed finishes first, but the
    caller started first: both the transcript and its events put the caller first."""
    received: list[TranscriptEntry] = []
    stt = FakeStt(["I need a taxi."], delay=0.2)
    llm = FakeLlm(["Sure."])
    sink = FakeSink(instant=True)
    async with TurnEngine(
        TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink, events=told_into(received)), config()
    ) as conv:
        speak(conv)
        await until(lambda: len(stt.calls) == 1)  # the caller's turn is being transcribed
        await conv.say("One moment.")
        await until(lambda: len(conv.transcript) >= 3)
    spoken = [e.content for e in conv.transcript]
    assert spoken == ["I need a taxi.", "One moment.", "Sure."]
    assert [e.content for e in received] == spoken
    starts = [e.started_at for e in conv.transcript]
    assert starts == sorted(starts)


async def test_what_the_caller_was_saying_when_the_call_closed_is_transcribed() -> None:
    stt = FakeStt(["Please transfer me to"])
    async with TurnEngine(
        TurnParts(stt=stt, llm=FakeLlm(), tts=FakeTts(), sink=FakeSink(instant=True)), config()
    ) as conv:
        for frame in frames(voiced(600)):  # still talking: the turn has not ended
            conv.feed_audio(frame)
        await asyncio.sleep(0.01)
    assert [(e.role, e.content) for e in conv.transcript] == [("user", "Please transfer me to")]
    assert conv.history[-1].content == "Please transfer me to"


class NumberedStt(FakeStt):
    """Each transcription's words name it: the transcript shows which one was heard."""

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        number = len(self.calls) + 1
        await super().transcribe(pcm, sample_rate)
        return f"Words of transcription {number}."


async def test_a_turn_still_being_transcribed_at_hang_up_is_heard_once_not_again() -> None:
    """The caller hangs up while their last turn is being transcribed: the line is hung up
    at once, and that same transcription's words reach the transcript (no second one)."""
    stt = NumberedStt(delay=0.3)
    at_hang_up: list[tuple[int, int]] = []

    async def hang_up() -> None:  # what the call does on `on_quiet`
        at_hang_up.append((stt.running, len(conv.transcript)))

    async with TurnEngine(
        TurnParts(stt=stt, llm=FakeLlm(), tts=FakeTts(), sink=FakeSink(instant=True)), config()
    ) as conv:
        speak(conv)
        await until(lambda: stt.running == 1)
        await conv.aclose(on_quiet=hang_up)
    assert at_hang_up == [(1, 0)]  # hung up while the words were still being transcribed
    heard = "Words of transcription 1."
    assert [(e.role, e.content) for e in conv.transcript] == [("user", heard)]
    assert conv.history[-1].content == heard
    assert len(stt.calls) == 1
    assert stt.most_running == 1


async def test_a_stuck_transcription_at_hang_up_is_still_bounded_by_its_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stt = FakeStt(["never"], delay=30.0)
    cfg = config(stt_timeout_s=1.0)
    async with TurnEngine(
        TurnParts(stt=stt, llm=FakeLlm(), tts=FakeTts(), sink=FakeSink(instant=True)), cfg
    ) as conv:
        speak(conv)
        await until(lambda: stt.running == 1)
        await asyncio.sleep(0.6)
        loop = asyncio.get_running_loop()
        closing = loop.time()
        await conv.aclose()
        waited = loop.time() - closing
    # What was left of the turn's own deadline (~0.4 s), not a new STT timeout on top.
    assert waited < 0.9
    assert conv.transcript == []
    assert len(stt.calls) == 1
    assert stt.running == 0
    assert "last caller words not transcribed: TimeoutError" in caplog.text


async def test_words_after_a_turn_being_transcribed_at_hang_up_are_heard_after_it() -> None:
    """The caller's turn is being transcribed, they go on talking and hang up: the turn's
    transcription is waited for, the rest transcribed after it (never beside it)."""
    stt = FakeStt(["I need a taxi", "to the station."], delay=0.3)
    async with TurnEngine(
        TurnParts(stt=stt, llm=FakeLlm(), tts=FakeTts(), sink=FakeSink(instant=True)), config()
    ) as conv:
        speak(conv, speech_ms=400)
        await until(lambda: stt.running == 1)
        for frame in frames(voiced(400)):  # still talking when the call ends
            conv.feed_audio(frame)
        await asyncio.sleep(0.01)
    assert [(e.role, e.content) for e in conv.transcript] == [
        ("user", "I need a taxi to the station.")
    ]
    assert stt.most_running == 1
    assert len(stt.calls) == 2
    rest_ms = 400 + conv.config.pre_roll_ms
    assert stt.calls[1] == 2 * 8 * rest_ms  # the rest alone (8 kHz, 16-bit), not the turn again


async def test_announce_is_spoken_to_its_end_through_a_barge_in_and_recorded() -> None:
    sink = FakeSink()
    async with TurnEngine(
        TurnParts(stt=FakeStt(["Wait."]), llm=FakeLlm(["Ok."]), tts=FakeTts(), sink=sink), config()
    ) as conv:
        announced = asyncio.ensure_future(conv.announce("I am transferring you to sales now."))
        await until(lambda: conv.assistant_audible)
        speak(conv)  # the caller talks over the announcement
        await asyncio.sleep(0.05)
        assert not any(h.flushed for h in sink.handles)
        sink.play_all()
        await asyncio.wait_for(announced, 2)
    first = conv.transcript[0]
    assert (first.role, first.content, first.interrupted) == (
        "assistant",
        "I am transferring you to sales now.",
        False,
    )


class SlowTts(FakeTts):
    """Synthesis takes `delay` seconds before the audio comes."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        await asyncio.sleep(self.delay)
        async for chunk in super().synthesize(text):
            yield chunk


async def test_greeting_still_being_synthesised_waits_for_the_callers_hello() -> None:
    """The callee says "Hello?" before the greeting's audio is ready: the greeting is spoken
    after it, whole, instead of being dropped."""
    greeting = "Hello, this is the dental clinic."
    stt, sink = FakeStt(["Hello?"], delay=0.3), FakeSink(instant=True)
    cfg = config(first_message=greeting)
    async with TurnEngine(
        TurnParts(stt=stt, llm=FakeLlm(["How can I help?"]), tts=SlowTts(0.1), sink=sink), cfg
    ) as conv:
        speak(conv)
        await until(lambda: any(e.content == greeting for e in conv.transcript))
    assert [(e.role, e.content) for e in conv.transcript[:2]] == [
        ("user", "Hello?"),
        ("assistant", greeting),
    ]


async def test_end_call_while_the_caller_holds_the_floor_does_not_wait_for_the_greeting() -> None:
    """The callee talks on (no turn ends) while the greeting waits for the floor: an end-call
    ends the call at once, not after the grace for "what is being said"; the greeting that
    was never spoken is recorded at 0 words."""
    greeting = "Hello, this is the dental clinic."
    sink = FakeSink(instant=True)
    cfg = config(first_message=greeting, end_call_grace_s=30.0)
    async with TurnEngine(
        TurnParts(stt=FakeStt(), llm=FakeLlm(), tts=SlowTts(0.05), sink=sink), cfg
    ) as conv:
        for frame in frames(voiced(600)):  # speaking, no pause: the floor stays taken
            conv.feed_audio(frame)
        await asyncio.sleep(0.1)  # the greeting's audio is ready and waits for the floor
        assert not sink.handles
        await conv.end_call(None)
        assert await asyncio.wait_for(conv.wait_ended(), 2) == "end-call"
    assert not sink.handles  # nothing was played over the caller
    assert [(e.content, e.interrupted) for e in conv.transcript] == [("", True)]
