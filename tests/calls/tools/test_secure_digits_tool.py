"""The ``collect_secure_digits`` tool: its configuration, and what ``CallTools`` does with it —
the digits go to the organization's server in the ``tool-calls`` request alone, the model reads
the server's answer (or that the entry was not complete, and then nothing is sent)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from store.builders import make_call
from voicedock.calls.tools.config import assistant_tools, check_tools
from voicedock.calls.tools.executor import CallTools
from voicedock.domain.assistant_config import config_of
from voicedock.domain.json import JsonObject
from voicedock.domain.webhooks import ToolCallRequest
from voicedock.errors import BadRequest
from voicedock.pbx.base import Pbx
from voicedock.pipeline.frames import ToolCall
from voicedock.pipeline.hearing.secure_digits import SecureDigits, SecureDigitsPlan

pytestmark = pytest.mark.unit

CARD = "4929386172530418"


class Server:
    def __init__(self, answer: JsonObject) -> None:
        self.answer = answer
        self.requests: list[ToolCallRequest] = []

    async def tool_call(self, request: ToolCallRequest) -> JsonObject:
        self.requests.append(request)
        return self.answer


class Keys:
    """The call's secure entry, scripted: what it returns, what it was asked."""

    def __init__(self, entry: SecureDigits) -> None:
        self.entry = entry
        self.asked: list[tuple[SecureDigitsPlan, float]] = []
        self.released = 0

    async def collect(self, plan: SecureDigitsPlan, first_key_after_s: float) -> SecureDigits:
        self.asked.append((plan, first_key_after_s))
        return self.entry

    def release(self) -> None:
        self.released += 1


def tools_of(tool: dict[str, Any], server: Server | None, keys: Keys | None) -> CallTools:
    checked = check_tools([tool])
    call = make_call("org_1")
    return CallTools(
        call,
        assistant_tools(config_of({"tools": checked})),
        server=server,
        pbx=Pbx.__new__(Pbx),  # type: ignore[abstract]  # never asked here
        transfer=lambda _t: None,
        secure_keys=keys,
    )


PAYMENT = {
    "type": "collect_secure_digits",
    "name": "card_number",
    "prompt": "Please key in your card number, then press hash.",
    "min_digits": 15,
    "max_digits": 19,
}


async def test_the_digits_go_to_the_server_and_the_model_reads_its_answer() -> None:
    server = Server({"result": "payment accepted"})
    keys = Keys(SecureDigits(CARD, "terminator", complete=True))
    tools = tools_of(PAYMENT, server, keys)
    result = await tools.run(ToolCall("call_1", "card_number", json.dumps({"purpose": "pay"})))
    assert (result.content, result.error) == ("payment accepted", False)
    assert CARD not in result.content
    [request] = server.requests
    assert (request.name, request.tool_call_id) == ("card_number", "call_1")
    assert dict(request.arguments) == {"purpose": "pay", "digits": CARD, "ended_by": "terminator"}
    [(plan, prompt_s)] = keys.asked
    assert plan == SecureDigitsPlan(15, 19, "#", 10.0)
    assert prompt_s == pytest.approx(len(PAYMENT["prompt"]) * 0.08)  # heard as it opens
    assert keys.released == 1


async def test_the_model_may_ask_for_a_length_a_terminator_a_timeout_and_a_prompt() -> None:
    keys = Keys(SecureDigits("1234", "length", complete=True))
    tools = tools_of({"type": "collect_secure_digits", "max_digits": 8}, Server({}), keys)
    arguments = {"length": 4, "terminator": "", "digit_timeout_seconds": 5, "prompt": "Your PIN?"}
    call = ToolCall("c", "collect_secure_digits", json.dumps(arguments))
    assert tools.spoken(call) == "Your PIN?"  # what the caller hears as the tool starts
    await tools.run(call)
    assert keys.asked == [(SecureDigitsPlan(4, 4, None, 5.0), pytest.approx(9 * 0.08))]


@pytest.mark.parametrize(
    "arguments",
    [{"length": 20}, {"length": "4"}, {"terminator": "5"}, {"digit_timeout_seconds": 0}],
)
async def test_what_the_model_asks_out_of_bounds_is_a_failed_result(
    arguments: dict[str, Any],
) -> None:
    keys, server = Keys(SecureDigits(CARD, "length", complete=True)), Server({})
    tools = tools_of(PAYMENT, server, keys)
    result = await tools.run(ToolCall("c", "card_number", json.dumps(arguments)))
    assert result.error
    assert (keys.asked, server.requests) == ([], [])


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        (SecureDigits("", "timeout", complete=False), "entered no digits"),
        (SecureDigits("4929", "timeout", complete=False), "4 digits when the time ran out"),
        (SecureDigits("4929", "terminator", complete=False), "was not complete"),
        (SecureDigits("49", "closed", complete=False), "did not finish"),
    ],
)
async def test_an_entry_not_complete_sends_nothing_and_says_so(
    entry: SecureDigits, said: str
) -> None:
    server = Server({"result": "ok"})
    tools = tools_of(PAYMENT, server, Keys(entry))
    result = await tools.run(ToolCall("c", "card_number", "{}"))
    assert result.error
    assert said in result.content
    assert "nothing was sent" in result.content
    assert entry.digits not in result.content or not entry.digits
    assert server.requests == []


async def test_without_a_server_no_digits_are_collected() -> None:
    keys = Keys(SecureDigits(CARD, "terminator", complete=True))
    result = await tools_of(PAYMENT, None, keys).run(ToolCall("c", "card_number", "{}"))
    assert result.error
    assert keys.asked == []


async def test_a_server_error_is_a_failed_result() -> None:
    server = Server({"error": "card declined"})
    keys = Keys(SecureDigits(CARD, "terminator", complete=True))
    result = await tools_of(PAYMENT, server, keys).run(ToolCall("c", "card_number", "{}"))
    assert result.error
    assert "card declined" in result.content


def test_the_model_is_offered_the_tool_without_any_digits_field() -> None:
    [tool] = assistant_tools(config_of({"tools": check_tools([{"type": PAYMENT["type"]}])}))
    offered = tool.spec.openai_tool()["function"]
    assert offered["name"] == "collect_secure_digits"
    properties = offered["parameters"]["properties"]  # type: ignore[index,call-overload]
    assert set(properties) == {"prompt", "length", "terminator", "digit_timeout_seconds"}
    assert tool.secure_digits == SecureDigitsPlan(1, 16, "#", 10.0)


@pytest.mark.parametrize(
    ("tool", "error"),
    [
        ({"min_digits": 0}, "min_digits must be between 1 and 32"),
        ({"max_digits": 33}, "max_digits must be between 1 and 32"),
        ({"min_digits": 9, "max_digits": 4}, "tools[0].min_digits must not exceed max_digits"),
        ({"terminator": "5"}, "terminator must be one of"),
        ({"digit_timeout_seconds": 61}, "digit_timeout_seconds must be between 1 and 60"),
        ({"destinations": ["sales"]}, "unknown field(s): destinations"),
    ],
)
def test_a_bad_configuration_is_refused(tool: dict[str, Any], error: str) -> None:
    with pytest.raises(BadRequest) as refused:
        check_tools([{"type": "collect_secure_digits", **tool}])
    assert error in str(refused.value)


def test_no_terminator_is_an_empty_string() -> None:
    checked = check_tools([{"type": "collect_secure_digits", "terminator": "", "max_digits": 4}])
    [tool] = assistant_tools(config_of({"tools": checked}))
    assert tool.secure_digits == SecureDigitsPlan(1, 4, None, 10.0)
