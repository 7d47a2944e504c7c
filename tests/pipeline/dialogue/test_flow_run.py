"""A flow as it runs (``pipeline/dialogue/flow_run.py``): the model is asked with its node's
instructions and ``next_step``; a wrong argument keeps the call in the node with the reason; the
fields are kept and the branch, the choice or the next node moves it; an end node ends the
call after its say; each message names the node it ended in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from voicedock.domain.flows import Flow
from voicedock.pipeline.dialogue.events import CallEvents, FlowMoved
from voicedock.pipeline.dialogue.flow_run import FlowRun
from voicedock.pipeline.dialogue.turn_engine import ASSISTANT_ENDED_CALL, TurnEngine, TurnParts
from voicedock.pipeline.frames import ChatMessage, ToolCall
from voicedock.pipeline.tools import ToolSpec

from ..fakes import FakeLlm, FakeSink, FakeStt, FakeTts
from ..synth import frames, silence
from ..test_turn_engine import config, speak, until

pytestmark = pytest.mark.unit

FLOW = msgspec.convert(
    {
        "start": "greet",
        "nodes": [
            {"name": "greet", "prompt": "Greet the caller.", "next": "ask_dob"},
            {
                "name": "ask_dob",
                "prompt": "Ask for the caller's date of birth.",
                "extract": [{"name": "date_of_birth", "type": "date", "description": "DOB"}],
                "branches": [
                    {"field": "date_of_birth", "before": "2008-01-01", "next": "adult"},
                    {"next": "minor"},
                ],
            },
            {
                "name": "adult",
                "prompt": "Help the caller.",
                "choices": [
                    {"next": "billing", "description": "a question about a bill"},
                    {"next": "done", "description": "nothing else"},
                ],
            },
            {"name": "billing", "prompt": "Answer about the bill."},
            {"name": "done", "say": "Goodbye.", "end": True},
            {"name": "minor", "say": "Sorry, we can only help adults. Goodbye.", "end": True},
        ],
    },
    Flow,
)


def step(arguments: object, call_id: str = "s") -> ToolCall:
    return ToolCall(call_id, "next_step", json.dumps(arguments))


def test_each_node_offers_its_own_next_step() -> None:
    run = FlowRun(FLOW)
    greet = run.tool()
    assert greet is not None
    assert greet.parameters["required"] == []
    assert "step 'greet'" in run.instructions()
    assert "Greet the caller." in run.instructions()
    run.step(step({}))
    tool = run.tool()
    assert tool is not None
    assert tool.parameters["properties"] == {
        "date_of_birth": {"type": "string", "format": "date", "description": "DOB (YYYY-MM-DD)"}
    }
    assert tool.parameters["required"] == ["date_of_birth"]
    run.step(step({"date_of_birth": "1980-04-02"}))
    choice = run.tool()
    assert choice is not None
    assert choice.parameters["properties"]["next"]["enum"] == ["billing", "done"]  # type: ignore[index]
    run.step(step({"next": "billing"}))
    assert run.tool() is None  # billing is the last node: no way on, the call goes on in it


def test_a_wrong_argument_keeps_the_call_in_the_node_saying_why() -> None:
    events, moved = CallEvents(), []
    events.subscribe(FlowMoved, moved.append)
    run = FlowRun(FLOW, events)
    run.started()
    run.step(step({}))
    for wrong, said in [
        ({}, "date_of_birth is missing"),
        ({"date_of_birth": "April"}, "date_of_birth must be a date, YYYY-MM-DD"),
        ({"date_of_birth": "1980-04-02", "name": "x"}, "name is not a field of this step"),
    ]:
        result = run.step(step(wrong)).result
        assert result.error
        assert said in result.content
        assert run.node.name == "ask_dob"
    assert run.step(ToolCall("s", "next_step", "[1]")).result.error
    moved_on = run.step(step({"date_of_birth": "2010-05-01"}))
    assert (moved_on.say, moved_on.ends, moved_on.result.end_turn) == (
        "Sorry, we can only help adults. Goodbye.",
        True,
        True,
    )
    assert run.progress().path == ["greet", "ask_dob", "minor"]
    assert run.progress().fields == {"date_of_birth": "2010-05-01"}
    assert [m.progress.node for m in moved] == ["greet", "ask_dob", "minor"]


def test_the_record_keeps_text_fields_redacted_the_branches_read_them_as_given() -> None:
    """With the call's redaction plan, the record's fields are redacted as its transcript is;
    the branch still reads the date the caller gave (an adult goes to adult)."""
    run = FlowRun(FLOW, redact=lambda text: "[date_of_birth]")
    run.started()
    run.step(step({}))
    run.step(step({"date_of_birth": "1980-04-02"}))
    assert run.node.name == "adult"
    assert run.progress().fields == {"date_of_birth": "[date_of_birth]"}
    assert run.fields == {"date_of_birth": "1980-04-02"}


def test_a_choice_outside_the_nodes_named_is_refused() -> None:
    run = FlowRun(FLOW)
    run.step(step({}))
    run.step(step({"date_of_birth": "1980-04-02"}))
    result = run.step(step({"next": "minor"})).result
    assert result.error
    assert "next must be one of billing, done" in result.content
    assert run.node.name == "adult"


class ScriptedLlm(FakeLlm):
    """Each request gets the next of ``script``: what the model says and calls."""

    def __init__(self, script: Sequence[Sequence[str | ToolCall]]) -> None:
        super().__init__()
        self.script = [list(items) for items in script]
        self.offered: list[list[str]] = []

    async def stream_with_tools(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[str | ToolCall]:
        self.calls.append(list(messages))
        self.offered.append([tool.name for tool in tools])
        for item in self.script.pop(0) if self.script else ["Mm."]:
            yield item

    async def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        """Asked without tools (a node with no way on)."""
        async for item in self.stream_with_tools(messages, ()):
            assert isinstance(item, str)
            yield item


def _said(conv: TurnEngine, role: str) -> list[str]:
    return [e.content for e in conv.transcript if e.role == role]


def steps_asked(llm: ScriptedLlm) -> list[str]:
    """The node each request's instructions named."""
    found = []
    for messages in llm.calls:
        system = messages[0].content
        found.append(system.split("step '")[1].split("'")[0])
    return found


async def test_the_model_is_moved_node_by_node_and_each_message_names_its_node() -> None:
    stt = FakeStt(["Hi.", "April second 1980.", "My bill."])
    llm = ScriptedLlm(
        [
            ["Hello, I must confirm who you are. ", step({}, "a")],
            ["What is your date of birth?"],
            [step({"date_of_birth": "02/04/1980"}, "b")],
            [step({"date_of_birth": "1980-04-02"}, "c")],
            ["Thanks, how can I help?"],
            [step({"next": "billing"}, "d")],
            ["Your bill is paid."],
        ]
    )
    sink = FakeSink(instant=True)
    events, moved = CallEvents(), []
    events.subscribe(FlowMoved, moved.append)
    parts = TurnParts(stt=stt, llm=llm, tts=FakeTts(), sink=sink, events=events)
    async with TurnEngine(parts, config(flow=FLOW)) as conv:
        for said in range(3):
            for frame in frames(silence(3000)):  # after the reply, on the loop's clock
                conv.feed_audio(frame)
            speak(conv)
            await until(
                lambda n=said: len([e for e in conv.transcript if e.role == "assistant"]) > n, 5
            )
        await until(lambda: not llm.script, 5)
    assert steps_asked(llm) == [
        "greet",
        "ask_dob",
        "ask_dob",
        "ask_dob",
        "adult",
        "adult",
        "billing",
    ]
    assert llm.offered[1] == ["next_step"]
    assert llm.offered[6] == []  # billing: no way on
    wrong = [m for m in llm.calls[3] if m.role == "tool"][-1]
    assert "date_of_birth must be a date" in wrong.content  # told why, asked again
    assert conv.flow is not None
    progress = conv.flow.progress()
    assert progress.path == ["greet", "ask_dob", "adult", "billing"]
    assert progress.fields == {"date_of_birth": "1980-04-02"}
    assert [m.progress.node for m in moved] == progress.path
    nodes = [
        (e.role, e.content, e.node) for e in conv.transcript if e.role in ("user", "assistant")
    ]
    assert nodes == [
        ("user", "Hi.", "greet"),
        ("assistant", "Hello, I must confirm who you are. What is your date of birth?", "ask_dob"),
        ("user", "April second 1980.", "ask_dob"),
        ("assistant", "Thanks, how can I help?", "adult"),
        ("user", "My bill.", "adult"),
        ("assistant", "Your bill is paid.", "billing"),
    ]


async def test_an_end_node_says_its_words_and_ends_the_call() -> None:
    stt = FakeStt(["Hi.", "The first of May 2010."])
    llm = ScriptedLlm(
        [
            [step({}, "a")],
            ["Your date of birth, please?"],
            [step({"date_of_birth": "2010-05-01"}, "b")],
        ]
    )
    tts = FakeTts()
    parts = TurnParts(stt=stt, llm=llm, tts=tts, sink=FakeSink(instant=True))
    async with TurnEngine(parts, config(flow=FLOW)) as conv:
        speak(conv)
        await until(lambda: any(e.role == "assistant" for e in conv.transcript), 5)
        for frame in frames(silence(3000)):
            conv.feed_audio(frame)
        speak(conv)
        assert await asyncio.wait_for(conv.wait_ended(), 5) == ASSISTANT_ENDED_CALL
    assert "Sorry, we can only help adults." in tts.texts
    assert len(llm.calls) == 3  # the end node's words are the flow's, not the model's
    assert conv.flow is not None
    assert conv.flow.node.name == "minor"


NODE_TOOLS = msgspec.convert(
    {
        "start": "greet",
        "nodes": [
            {"name": "greet", "prompt": "Greet.", "next": "ask", "tools": ["lookup"]},
            {"name": "ask", "prompt": "Ask.", "next": "done", "tools": []},
            {"name": "done", "say": "Goodbye.", "end": True},
        ],
    },
    Flow,
)
LOOKUP, TRANSFER = (
    ToolSpec(name, "A tool.", {"type": "object", "properties": {}})
    for name in ("lookup", "transfer_out")
)


async def test_a_node_offers_only_the_tools_it_names() -> None:
    """Each node offers the assistant's tools it names (and next_step); a tool it does not
    name, called anyway, is refused with a result saying so, never run."""
    llm = ScriptedLlm(
        [
            [ToolCall("t", "transfer_out", "{}")],
            [step({}, "a")],
            ["What can I do?"],
        ]
    )
    parts = TurnParts(stt=FakeStt(["Hi."]), llm=llm, tts=FakeTts(), sink=FakeSink(instant=True))
    cfg = config(flow=NODE_TOOLS, tools=(LOOKUP, TRANSFER))
    async with TurnEngine(parts, cfg) as conv:
        for frame in frames(silence(3000)):
            conv.feed_audio(frame)
        speak(conv)
        await until(lambda: not llm.script, 5)
    assert llm.offered[0] == ["lookup", "next_step"]
    assert llm.offered[2] == ["next_step"]
    refused = [m for m in llm.calls[1] if m.role == "tool"][-1]
    assert refused.content == "transfer_out is not offered in this step."
