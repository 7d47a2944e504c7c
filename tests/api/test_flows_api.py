"""``flow`` over REST: each refusal of a flow is a 400 naming its place, on a saved assistant
and on a call's own configuration; a good one is saved and read back; a speech-to-speech
assistant refuses one; the OpenAPI document describes it."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Api
from api.test_calls_api import DESTINATION, post_outbound
from api.test_metrics_api import TEST_PROVIDER, talked_call
from pipeline.dialogue.test_flow_run import ScriptedLlm
from pipeline.fakes import FakeStt, FakeTts, registered
from pipeline.synth import silence, voiced
from voicedock.api.models import document
from voicedock.pipeline.frames import ToolCall

pytestmark = pytest.mark.unit

FLOW: dict[str, Any] = {
    "start": "greet",
    "nodes": [
        {"name": "greet", "prompt": "Greet; say you must confirm identity.", "next": "ask_dob"},
        {
            "name": "ask_dob",
            "prompt": "Ask for the caller's date of birth.",
            "extract": [{"name": "date_of_birth", "type": "date", "description": "Their DOB"}],
            "branches": [
                {"field": "date_of_birth", "before": "2008-01-01", "next": "adult"},
                {"next": "minor"},
            ],
        },
        {"name": "adult", "prompt": "Help the caller with their account."},
        {"name": "minor", "say": "Sorry, we can only help adults. Goodbye.", "end": True},
    ],
}


UNSET_ME = object()  # a key the change takes out


def _changed(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    flow = copy.deepcopy(FLOW)
    change(flow)
    return _without(flow)


def _without(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without(v) for k, v in value.items() if v is not UNSET_ME}
    if isinstance(value, list):
        return [_without(v) for v in value]
    return value


def _node(i: int, **values: object) -> Callable[[dict[str, Any]], object]:
    return lambda flow: flow["nodes"][i].update(values)


def _branch(i: int, **values: object) -> Callable[[dict[str, Any]], object]:
    return lambda flow: flow["nodes"][1]["branches"][i].update(values)


BAD: list[tuple[Callable[[dict[str, Any]], object], str]] = [
    (lambda f: f.update(start="hello"), "flow.start 'hello' is not one of the nodes"),
    (_node(0, next="nowhere"), "flow.nodes[0].next 'nowhere' is not one of the nodes"),
    (_node(3, name="adult"), "flow.nodes[3].name 'adult' names another node too"),
    (_node(0, name="Greet"), "flow.nodes[0].name must be 1-40 of a-z, 0-9 and _"),
    (_node(0, prompt="x" * 4001), "flow.nodes[0].prompt must be a text of 1-4000 characters"),
    (
        lambda f: f["nodes"].append({"name": "lost", "prompt": "Nobody comes here."}),
        "flow.nodes[4] 'lost' cannot be reached from start",
    ),
    (
        _branch(0, field="postcode"),
        "flow.nodes[1].branches[0].field 'postcode' is not extracted on every way",
    ),
    (
        lambda f: f["nodes"][1]["branches"].reverse(),
        "flow.nodes[1].branches[0]: the branch without a condition (the else) comes last",
    ),
    (_branch(0, before="soon"), 'flow.nodes[1].branches[0].before must be a date, "YYYY-MM-DD"'),
    (_branch(0, below=3), "flow.nodes[1].branches[0] needs one condition"),
    (
        lambda f: f["nodes"][1]["branches"][0].update(before=UNSET_ME, above=3),
        "flow.nodes[1].branches[0].above is for a number field",
    ),
    (
        _node(1, extract=[{"name": "date_of_birth", "type": "colour"}]),
        "flow.nodes[1].extract[0].type must be one of string, integer, number, boolean, date",
    ),
    (
        _node(1, extract=[{"name": f"f{i}", "type": "string"} for i in range(11)]),
        "flow.nodes[1].extract must be a list of at most 10 fields",
    ),
    (_node(0, end=True), "flow.nodes[0] moves on one way: next or end, not both"),
    (_node(2, extract=[{"name": "x", "type": "string"}]), "flow.nodes[2].extract: a node"),
    (_node(2, prompt=None), "flow.nodes[2].prompt must be a text"),
    (_node(2, colour="red"), "flow.nodes[2]: unknown field(s): colour"),
    (
        lambda f: f.update(nodes=[{"name": f"n{i}", "prompt": "x"} for i in range(31)]),
        "flow.nodes must be a list of 1-30 nodes",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD)
async def test_a_bad_flow_is_a_400_naming_the_field(
    api: Api, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    flow = _changed(change)
    resp = await api.client.post(
        "/assistants", json={"name": "Desk", "flow": flow}, headers=api.auth()
    )
    assert resp.status == 400
    body = await resp.json()
    assert message in body["message"], body


async def test_a_calls_own_bad_flow_is_refused_before_dialling(api: Api) -> None:
    flow = _changed(_node(0, next="nowhere"))
    assistant = {"first_message": "Hello.", "flow": flow}
    resp = await post_outbound(api, {"destination": DESTINATION, "assistant": assistant})
    assert resp.status == 400
    assert "flow.nodes[0].next" in (await resp.json())["message"]
    assert api.pbx.originated == []


async def test_a_flow_is_saved_and_read_back(api: Api) -> None:
    h = api.auth()
    created = await api.client.post("/assistants", json={"name": "Id", "flow": FLOW}, headers=h)
    assert created.status == 201, await created.text()
    body = await created.json()
    assert body["flow"] == FLOW
    got = await api.client.get(f"/assistants/{body['id']}", headers=h)
    assert (await got.json())["flow"] == FLOW


async def test_a_speech_to_speech_assistant_refuses_a_flow(api: Api) -> None:
    assistant = {"name": "Realtime", "provider": "xai_realtime", "flow": FLOW}
    resp = await api.client.post("/assistants", json=assistant, headers=api.auth())
    assert resp.status == 400
    assert "flow needs a pipeline assistant" in (await resp.json())["message"]


async def test_a_tool_of_the_flow_s_name_is_refused(api: Api) -> None:
    tool = {
        "type": "webhook",
        "name": "next_step",
        "description": "Mine.",
        "parameters": {"type": "object", "properties": {}},
    }
    assistant = {"name": "Id", "flow": FLOW, "tools": [tool]}
    resp = await api.client.post("/assistants", json=assistant, headers=api.auth())
    body = await resp.json()
    assert resp.status == 400, body
    assert body["error"] == "Duplicate tool name", body
    assert "next_step is the flow's own tool" in body["message"]


def test_the_document_describes_the_flow() -> None:
    schemas = document.openapi_document()["components"]["schemas"]
    assert schemas["Flow"]["required"] == ["start", "nodes"]
    assert "branches" in schemas["FlowNode"]["properties"]


@pytest.fixture
def flow_speech() -> Iterator[tuple[FakeStt, ScriptedLlm, FakeTts]]:
    """The caller gives a date of birth; the model hands it to next_step."""
    made = (
        FakeStt(["The first of May 2010."]),
        ScriptedLlm([[ToolCall("s1", "next_step", '{"date_of_birth": "2010-05-01"}')]]),
        FakeTts(8000, ms_per_char=30),
    )
    with registered(TEST_PROVIDER, *made):
        yield made


async def test_a_call_runs_its_flow_and_its_record_shows_the_nodes_and_fields(
    tmp_path: Path, flow_speech: tuple[FakeStt, ScriptedLlm, FakeTts]
) -> None:
    """Through the fake PBX: the model, asked in the start node with its next_step, gives the
    typed field; the branch leads to the end node, whose words end the call; GET /calls/{id}
    shows the flow's path and field, and each message its node."""
    flow = copy.deepcopy(FLOW)
    flow["start"] = "ask_dob"
    flow["nodes"] = flow["nodes"][1:]
    override = {"first_message": "Hello.", "flow": flow}
    call, _ = await talked_call(tmp_path, override, voiced(600) + silence(800))
    assert call["flow"] == {
        "node": "minor",
        "path": ["ask_dob", "minor"],
        "fields": {"date_of_birth": "2010-05-01"},
    }
    assert call["end_reason"] == "assistant-ended-call"
    said = [(m["role"], m["content"], m.get("flow_node")) for m in call["messages"]]
    assert ("user", "The first of May 2010.", "ask_dob") in said
    assert ("assistant", "Sorry, we can only help adults. Goodbye.", "minor") in said
    _, llm, tts = flow_speech
    assert "next_step" in llm.offered[0]
    assert "Ask for the caller's date of birth." in llm.calls[0][0].content
    assert "Sorry, we can only help adults." in tts.texts
