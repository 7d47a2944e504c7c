"""A speech-to-speech call whose session fails goes on with its pipeline
(``pipeline/dialogue/realtime_fallback.py``): against the loopback Realtime server, the session
drops,
sends a server error, stops answering or is refused, and the turn engine takes the call over on
fake STT/LLM/TTS with the conversation so far; each move is a ``Switch`` counted on the node's
breakers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from fakes.local_server import LocalServer
from voicedock.domain.assistant_config import RealtimeConfig
from voicedock.domain.usage import SpokenTurn, speech_usage
from voicedock.pipeline.dialogue.carried import carried_history
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.dialogue.events import CallEvents
from voicedock.pipeline.dialogue.realtime.unanswered_turns import UnansweredTurns
from voicedock.pipeline.dialogue.realtime_dialogue import RealtimeDialogue, RealtimeParts
from voicedock.pipeline.dialogue.realtime_fallback import (
    ANSWER_NOTE,
    CONTINUE_NOTE,
    RealtimeWithPipeline,
)
from voicedock.pipeline.dialogue.turn_engine import TurnEngine, TurnParts
from voicedock.pipeline.fallback_plans.plan import Switch
from voicedock.pipeline.fallback_plans.realtime import RealtimePlan
from voicedock.pipeline.fallback_plans.serving import Endpoints
from voicedock.pipeline.frames import ChatMessage, TranscriptEntry
from voicedock.pipeline.pools.provider_health import BreakerState, Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import Tts
from voicedock.pipeline.providers.realtime import RealtimeSpeech
from voicedock.pipeline.speaking.output import OutputSink

from .cloud.fake_realtime import RealtimeScript, realtime_handler
from .fakes import FakeLlm, FakeSink, FakeStt, FakeTts, told_into
from .synth import frames, silence, voiced
from .test_turn_engine import config, until

pytestmark = pytest.mark.unit

KEY = "xai-test-secret"
SESSION = Endpoint("realtime", "xai_realtime", "ws://127.0.0.1:1/v1/realtime")
TO = Endpoint("llm", "openai", model="gpt-4o-mini")
HEARING, VOICE = Endpoint("stt", "deepgram"), Endpoint("tts", "elevenlabs")
GREETING, HEARD, LATER = "Hello, dental clinic.", "I need an appointment.", "Monday, please."
ANSWER = "Monday at nine is free."


@dataclass
class Pipeline:
    stt: FakeStt = field(default_factory=lambda: FakeStt([LATER]))
    llm: FakeLlm = field(default_factory=lambda: FakeLlm([ANSWER]))
    tts: FakeTts = field(default_factory=FakeTts)
    switches: list[Switch] = field(default_factory=list)
    health: ProviderHealth = field(default_factory=ProviderHealth)

    def plan(self, timeout_s: float = 5.0) -> RealtimePlan:
        return RealtimePlan(
            SESSION,
            self.stt,
            self.llm,
            self.tts,
            TO,
            self.health,
            Endpoints(HEARING, TO, VOICE),
            self.switches.append,
            attempt_timeout_s=timeout_s,
        )


@asynccontextmanager
async def session_at(script: RealtimeScript) -> AsyncIterator[RealtimeSpeech]:
    server = LocalServer()
    server.route("GET", "/v1/realtime", realtime_handler(script))
    async with server:
        speech = RealtimeSpeech(
            RealtimeConfig(api_key=KEY, url=server.url.replace("http", "ws") + "/v1/realtime")
        )
        try:
            yield speech
        finally:
            await speech.aclose()


def with_pipeline(
    *,
    speech: RealtimeSpeech,
    tts: Tts,
    plan: RealtimePlan,
    sink: OutputSink,
    config: ConversationConfig,
    events: CallEvents | None = None,
) -> RealtimeWithPipeline:
    """The call's dialogue as a live call makes it: the session, then the plan's pipeline."""

    def session(hand_over_after_s: float) -> RealtimeDialogue:
        return RealtimeDialogue(
            RealtimeParts(speech=speech, tts=tts, sink=sink, events=events),
            config,
            hand_over_after_s=hand_over_after_s,
        )

    def pipeline(carried: ConversationConfig) -> TurnEngine:
        return TurnEngine(
            TurnParts(
                stt=plan.stt,
                llm=plan.llm,
                tts=plan.tts,
                sink=sink,
                events=events,
                endpoints=plan.endpoints,
            ),
            carried,
        )

    return RealtimeWithPipeline(session=session, pipeline=pipeline, plan=plan, config=config)


@asynccontextmanager
async def call(
    script: RealtimeScript, pipeline: Pipeline, *, timeout_s: float = 5.0
) -> AsyncIterator[tuple[RealtimeWithPipeline, FakeTts, list[TranscriptEntry]]]:
    """A call greeting the caller (in the session's voice), its transcript as delivered."""
    delivered: list[TranscriptEntry] = []
    say_voice = FakeTts()
    async with (
        session_at(script) as speech,
        with_pipeline(
            speech=speech,
            tts=say_voice,
            plan=pipeline.plan(timeout_s),
            sink=FakeSink(instant=True),
            config=config(first_message=GREETING),
            events=told_into(delivered),
        ) as running,
    ):
        yield running, say_voice, delivered


def hear(dialogue: RealtimeWithPipeline, pcm: bytes) -> None:
    for frame in frames(pcm):
        dialogue.feed_audio(frame)


def said(transcript: list[TranscriptEntry]) -> list[tuple[str, str]]:
    return [(e.role, e.content) for e in transcript]


async def test_a_dropped_session_leaves_the_call_to_the_pipeline_with_the_conversation_so_far() -> (
    None
):
    script = RealtimeScript(token=KEY, turn_after_frames=10, user_says=HEARD, drop_after_replies=1)
    pipeline = Pipeline()
    async with call(script, pipeline) as (dialogue, say_voice, delivered):
        await until(lambda: ("assistant", GREETING) in said(dialogue.transcript))
        hear(dialogue, silence(400))  # the session's turn: heard, answered "Hi", then it drops
        await until(lambda: bool(pipeline.switches))
        hear(dialogue, voiced(600) + silence(600))  # the caller's next words: the pipeline's
        await until(lambda: ("assistant", ANSWER) in said(dialogue.transcript), 5)
    assert await dialogue.wait_ended() == "closed"
    (switch,) = pipeline.switches
    assert (switch.kind, switch.source, switch.to) == ("realtime", SESSION, TO)
    assert switch.reason == "connection", switch
    conversation = [
        ("assistant", GREETING),
        ("user", HEARD),
        ("assistant", "Hi"),
        ("user", LATER),
        ("assistant", ANSWER),
    ]
    assert said(dialogue.transcript) == conversation  # once each, in order
    assert said(delivered) == conversation
    # The pipeline's model: the same instructions, the call so far, then the new turn.
    (context,) = pipeline.llm.calls
    assert context[0].role == "system"
    assert "Be brief." in context[0].content
    assert [(m.role, m.content) for m in context[1:]] == conversation[:4]
    assert say_voice.texts == [GREETING]  # never said again
    assert pipeline.tts.texts == [ANSWER]
    counts = pipeline.health.counts()[SESSION]
    assert (counts.requests, counts.failures, counts.switches) == (1, 1, 1)
    assert script.connections == 1
    # What the session heard and said counts against it (no provider of its own); what the
    # pipeline heard and said, and its turns, name the pipeline's providers.
    named = [(e.content, e.provider) for e in dialogue.transcript]
    session_said = [(GREETING, None), (HEARD, None), ("Hi", None)]
    assert named == [*session_said, (LATER, "deepgram"), (ANSWER, "elevenlabs")]
    turn = dialogue.latencies[-1]
    assert (turn.stt_provider, turn.llm_provider, turn.tts_provider) == (
        "deepgram",
        "openai/gpt-4o-mini",
        "elevenlabs",
    )
    spoken = (
        SpokenTurn(e.role, e.content, e.started_at, e.ended_at, e.provider)
        for e in dialogue.transcript
    )
    usage = speech_usage(spoken, stt_provider="xai_realtime", tts_provider="xai_realtime")
    assert [(e["kind"], e["provider"]) for e in usage] == [
        ("stt", "xai_realtime"),
        ("stt", "deepgram"),
        ("tts", "xai_realtime"),
        ("tts", "elevenlabs"),
    ]
    assert usage[3]["characters"] == len(ANSWER)


async def test_the_callers_words_the_session_never_answered_are_heard_by_the_pipeline() -> None:
    # The session hears a turn, transcribes none of it and drops before answering.
    script = RealtimeScript(token=KEY, turn_after_frames=30, drop_before_reply=True)
    pipeline = Pipeline()
    async with call(script, pipeline) as (dialogue, _say, _delivered):
        await until(lambda: ("assistant", GREETING) in said(dialogue.transcript))
        hear(dialogue, voiced(600))  # 30 frames: the turn ends at the last
        await until(lambda: bool(pipeline.switches))
        hear(dialogue, silence(600))
        await until(lambda: ("assistant", ANSWER) in said(dialogue.transcript), 5)
    # Its words, heard again by the pipeline: transcribed once, answered.
    assert said(dialogue.transcript) == [
        ("assistant", GREETING),
        ("user", LATER),
        ("assistant", ANSWER),
    ]
    assert len(pipeline.stt.calls) == 1
    assert pipeline.stt.calls[0] >= len(voiced(500))


async def test_a_session_that_stops_answering_hands_the_unanswered_turn_to_the_pipeline() -> None:
    script = RealtimeScript(token=KEY, turn_after_frames=5, user_says=HEARD, reply_delay_s=2)
    pipeline = Pipeline(llm=FakeLlm([ANSWER]))
    async with call(script, pipeline, timeout_s=0.3) as (dialogue, _say, _delivered):
        await until(lambda: ("assistant", GREETING) in said(dialogue.transcript))
        hear(dialogue, silence(200))
        await until(lambda: ("assistant", ANSWER) in said(dialogue.transcript), 5)
    assert [s.reason for s in pipeline.switches] == ["timeout"]
    (context,) = pipeline.llm.calls
    assert [(m.role, m.content) for m in context[1:]] == [
        ("assistant", GREETING),
        ("user", HEARD),
        ("system", ANSWER_NOTE),
    ]
    assert said(dialogue.transcript) == [
        ("assistant", GREETING),
        ("user", HEARD),
        ("assistant", ANSWER),
    ]


async def test_a_reply_the_session_left_midway_is_continued_by_the_pipeline() -> None:
    script = RealtimeScript(token=KEY, turn_after_frames=5, user_says=HEARD, drop_mid_reply=True)
    pipeline = Pipeline(llm=FakeLlm(["at nine on Monday."]))
    async with call(script, pipeline) as (dialogue, _say, _delivered):
        await until(lambda: ("assistant", GREETING) in said(dialogue.transcript))
        hear(dialogue, silence(200))
        await until(lambda: ("assistant", "at nine on Monday.") in said(dialogue.transcript), 5)
    (context,) = pipeline.llm.calls
    assert [(m.role, m.content) for m in context[-3:]] == [
        ("user", HEARD),
        ("assistant", "We open"),
        ("system", CONTINUE_NOTE),
    ]
    cut = dialogue.transcript[2]
    assert (cut.role, cut.content, cut.interrupted) == ("assistant", "We open", True)
    assert said(dialogue.transcript)[3:] == [("assistant", "at nine on Monday.")]


async def test_what_is_asked_while_the_session_hands_over_goes_to_the_pipeline() -> None:
    script = RealtimeScript(token=KEY, drop_after_session_update=True)
    pipeline = Pipeline()
    sink = FakeSink()  # the greeting plays when the test says: the move waits for it
    async with (
        session_at(script) as speech,
        with_pipeline(
            speech=speech,
            tts=FakeTts(),
            plan=pipeline.plan(),
            sink=sink,
            config=config(first_message=GREETING, fallback_timeout_s=5),
        ) as dialogue,
    ):
        await until(lambda: dialogue.moving)
        await dialogue.end_call("Goodbye.")
        while not dialogue.transcript or dialogue.transcript[-1].content != "Goodbye.":
            sink.play_all()
            await asyncio.sleep(0.01)
        assert await dialogue.wait_ended() == "end-call"
    assert said(dialogue.transcript)[0] == ("assistant", GREETING)  # played to its end
    assert not dialogue.transcript[0].interrupted
    assert pipeline.tts.texts == ["Goodbye."]
    assert [s.reason for s in pipeline.switches] == ["connection"]


async def test_a_server_error_event_is_a_failed_session() -> None:
    script = RealtimeScript(
        token=KEY, turn_after_frames=5, user_says=HEARD, server_error_after_replies=1
    )
    pipeline = Pipeline()
    async with call(script, pipeline) as (dialogue, _say, _delivered):
        hear(dialogue, silence(200))
        await until(lambda: bool(pipeline.switches))
    assert [s.reason for s in pipeline.switches] == ["bad-response"]
    assert ("assistant", "Hi") in said(dialogue.transcript)  # what it said stays said


async def test_a_refused_session_starts_the_call_on_the_pipeline_and_an_open_breaker_skips_it() -> (
    None
):
    script = RealtimeScript(token=KEY, reject_status=503)
    pipeline = Pipeline(health=ProviderHealth(failures_to_open=1))
    async with call(script, pipeline) as (dialogue, say_voice, _delivered):
        await until(lambda: ("assistant", GREETING) in said(dialogue.transcript))
    assert pipeline.tts.texts == [GREETING]  # the pipeline greets
    assert say_voice.texts == []
    assert pipeline.health.state(SESSION) is BreakerState.OPEN
    # The next call does not try the session: it starts on the pipeline at once.
    async with call(script, pipeline) as (dialogue, _say, _delivered):
        await until(lambda: ("assistant", GREETING) in said(dialogue.transcript))
    assert script.connections == 1
    assert [s.reason for s in pipeline.switches] == ["server-error", "breaker-open"]


async def test_a_session_lasting_the_call_succeeded() -> None:
    pipeline = Pipeline(health=ProviderHealth(failures_to_open=1))
    async with call(RealtimeScript(token=KEY, silent_caller=True), pipeline) as (dialogue, *_):
        await until(lambda: ("assistant", GREETING) in said(dialogue.transcript))
        await dialogue.end_call("Goodbye.")
        assert await dialogue.wait_ended() == "end-call"
    assert pipeline.switches == []
    counts = pipeline.health.counts()[SESSION]
    assert (counts.requests, counts.failures) == (1, 0)


def test_the_pipeline_reads_the_call_so_far_as_its_history() -> None:
    entries = [
        TranscriptEntry("assistant", GREETING, 1, 2),
        TranscriptEntry("user", HEARD, 3, 4),
        TranscriptEntry("tool_calls", '[{"id":"c1","name":"book"}]', 5, 5),
        TranscriptEntry("tool", '{"tool_call_id":"c1","result":"booked"}', 5, 5),
        TranscriptEntry("supervisor", "Offer Monday.", 6, 6),
        TranscriptEntry("assistant", "Hi", 7, 8, interrupted=True),
    ]
    history = carried_history(entries)
    assert [m.role for m in history] == ["assistant", "user", "system", "system", "assistant"]
    assert "booked" in history[2].content
    assert "Offer Monday." in history[3].content
    assert history[4] == ChatMessage("assistant", "Hi")


def test_the_call_so_far_is_carried_in_the_order_it_was_said() -> None:
    # A session's transcript and the context injected into it come as two lists.
    said = [TranscriptEntry("assistant", GREETING, 1, 2), TranscriptEntry("user", HEARD, 5, 6)]
    context = [TranscriptEntry("system", "The caller is a member.", 3, 3)]
    history = carried_history([*said, *context])
    assert [m.content for m in history] == [GREETING, "The caller is a member.", HEARD]


def test_unanswered_turns_keep_what_the_session_neither_transcribed_nor_answered() -> None:
    turns = UnansweredTurns(8000)
    turns.feed(b"\x01\x00" * 8000)  # 1 s before anything: only the pre-roll is kept
    turns.started()
    turns.feed(b"\x02\x00" * 800)
    turns.stopped()
    turns.feed(b"\x03\x00" * 800)  # silence after the turn: not kept
    assert turns.pending
    turns.transcribed()
    assert not turns.pending  # its words are in the transcript
    turns.started()
    turns.feed(b"\x04\x00" * 800)
    turns.stopped()
    turns.started()  # the caller goes on before the model answers
    turns.feed(b"\x05\x00" * 800)
    turns.answered()  # the model answered the turn that ended; the open one is kept
    turns.failed()
    turns.feed(b"\x06\x00" * 800)  # said while the pipeline takes over
    kept = turns.take()
    assert b"\x04\x00" not in kept
    assert kept.endswith(b"\x05\x00" * 800 + b"\x06\x00" * 800)
    assert not turns.pending
