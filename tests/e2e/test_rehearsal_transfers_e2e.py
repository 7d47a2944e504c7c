"""A test call never leaves the PBX, on the real lab Asterisk, driven through REST: during a
test suite's run, the assistant under test's ``transfer_call`` tool and an operator's
``POST /calls/{id}/control`` each ask the test call to transfer to a phone number. Neither
makes a channel on the carrier trunk (counted by an AMI session of the test's own and by ARI),
the control request says the transfer was simulated, and the run's result names both
transfers the call would have made (``would_transfer``); its ``transferred`` expectation holds
on them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import require_offline_speech, warm_offline_speech
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_rehearsal_e2e import _channels_while, _run_to_end
from e2e.test_tools_e2e import assistant
from e2e.trunk_observer import observe_trunk
from fakes.llm_standin import ChatRequest, LlmStandIn, ToolCalls
from voicedock_lab.server import LabAsterisk

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.asterisk,
    pytest.mark.timeout(240),
    pytest.mark.flaky(reruns=1),  # the caller's words go through Piper and Whisper
]

TOOL_NUMBER = "+31201234567"  # the tool's destination: a number the policy allows
CONTROL_NUMBER = "+4930901820"  # the operator's
ASK = "Please transfer me to billing."


@pytest.fixture(autouse=True)
def _offline_speech() -> None:
    require_offline_speech()


def transferring_model(request: ChatRequest) -> str | ToolCalls:
    """Transfers the caller who asks for it; else offers help."""
    if any(m.get("role") == "tool" for m in request.messages):
        return "One moment."
    if "transfer" in request.last_user_text.lower():
        return ToolCalls((("transfer_call", {"destination": TOOL_NUMBER}),))
    return "How can I help?"


async def _test_call_in_progress(live: LiveService, within: float = 60) -> str:
    """The test call, once it is in progress (as ``GET /calls?include_tests=true`` lists it)."""
    async with asyncio.timeout(within):
        while True:
            status, listed = await live.get("/calls?include_tests=true")
            assert status == 200, listed
            active = [c["id"] for c in listed["calls"] if c["status"] == "in-progress"]
            if active:
                return str(active[0])
            await asyncio.sleep(0.2)


async def test_a_test_calls_transfers_by_tool_and_by_control_dial_nothing(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    await warm_offline_speech()
    async with LlmStandIn(reply=transferring_model) as llm:
        settings = service_settings(lab, tmp_path / "e2e.db", "ari")
        settings.speech.openai_base_url = llm.base_url
        settings.speech.openai_api_key = "sk-lab-operator"
        settings.egress.allow_loopback = True
        live = await serve(settings)
        try:
            scenario: dict[str, Any] = {
                "name": "asks for billing",
                "steps": [
                    {"type": "say", "text": ASK},
                    {"type": "silence", "seconds": 6},  # the operator's transfer meanwhile
                ],
                "expectations": [{"type": "transferred", "destination": TOOL_NUMBER}],
            }
            status, suite = await live.post(
                "/test-suites", {"name": "Transfers", "scenarios": [scenario]}
            )
            assert status == 201, suite
            tool = {"type": "transfer_call", "destinations": [TOOL_NUMBER]}
            async with observe_trunk(lab, "carrier") as trunk:
                done = asyncio.Event()
                watching = asyncio.create_task(_channels_while(live, done))
                try:
                    status, accepted = await live.post(
                        f"/test-suites/{suite['id']}/runs", {"assistant": assistant([tool])}
                    )
                    assert status == 202, accepted
                    call_id = await _test_call_in_progress(live)
                    resp = await live.client.post(
                        f"/calls/{call_id}/control",
                        json={"type": "transfer", "destination": CONTROL_NUMBER},
                        headers=live.auth(),
                    )
                    assert resp.status == 200, await resp.text()
                    answer = await resp.json()
                    run = await _run_to_end(live, accepted["id"], within=150)
                finally:
                    done.set()
                    channels = await watching
                await asyncio.sleep(0.5)  # any Newchannel the PBX still had to report
            status, record = await live.get(f"/calls/{call_id}")
            assert status == 200, record
        finally:
            await live.client.close()

    assert answer == {
        "success": True,
        "message": f"Test call: would transfer to {CONTROL_NUMBER}; nothing was dialled",
    }
    # Nothing on the carrier trunk, by AMI's count and ARI's.
    assert trunk.created == [], trunk
    names = [name for name, _ in channels]
    assert names, "ARI showed no channel at all"
    assert not any(name.startswith("PJSIP/") for name in names), names
    # The run says what the call asked for.
    (result,) = run["results"]
    assert result["call_id"] == call_id
    asked = {(t["destination"], t["mode"]) for t in result["would_transfer"]}
    assert asked == {(TOOL_NUMBER, "blind"), (CONTROL_NUMBER, "blind")}, json.dumps(run)
    assert result["expectations"][0]["passed"], json.dumps(run)
    assert any(r.tools for r in llm.requests)  # the model was offered the tool
    # The call's own record: never transferred, each transfer's command recorded as simulated.
    assert record["transferred_to"] is None, record
    assert record["end_reason"] != "transferred", record
    commands = [
        (e["data"]["destination"], e["data"]["result"], e["data"]["delivered_to"])
        for e in record["events"]
        if e["type"] == "control" and e["data"]["type"] == "transfer"
    ]
    assert sorted(commands) == [
        (TOOL_NUMBER, "simulated", "none"),
        (CONTROL_NUMBER, "simulated", "none"),
    ], record["events"]
