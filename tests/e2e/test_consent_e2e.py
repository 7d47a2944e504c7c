"""Consent and disclosure on a real call: REST → engine → lab Asterisk, an assistant whose
``consent_plan`` is ``opt_out_keypad`` and which records.

The opting-out party presses 9 (RFC 4733 through the trunk) while the disclosure's window is
open: the call goes on (the first message is said after the disclosure), the call is not
recorded (no recording URL, ``GET /calls/{id}/recording`` 404, no file under the recordings
directory), its record says ``refused``, and the key never reaches the model (the
OpenAI-compatible stand-in, asked for a reply after it, received no ``Keypad:`` turn). The
silent party presses nothing: the window passes, the record says ``accepted`` and the
recording exists. With ``on_refusal`` ``no_recording_no_transcript`` the opting-out party's
call goes on (the model, asked after it, has the first message in its context) and keeps
neither a recording nor a transcript: no message stored, no ``transcript`` event in the SSE
stream. Speech goes through ``SpeechFakes`` (no models).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import SILENT_PARTY, wait_transcript
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_events_e2e import sse_messages
from e2e.test_redaction_e2e import read_stream
from fakes.llm_standin import LlmStandIn
from pbx.freeswitch.live_service import speech_fakes
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(90)]

OPTS_OUT_PARTY = "+31612345696"  # presses 9 two seconds after answering
DISCLOSURE = (
    "This call is recorded and handled by an AI assistant. Press 9 to continue without recording."
)
FIRST = "Hello, this is the city library."
REPLY = "How can I help?"


def consent_assistant(llm: LlmStandIn, on_refusal: str = "no_recording") -> dict[str, Any]:
    return {
        "first_message": FIRST,
        "record": True,
        "consent_plan": {
            "mode": "opt_out_keypad",
            "message": DISCLOSURE,
            "key": "9",
            "timeout_seconds": 5,
            "on_refusal": on_refusal,
        },
        "llm_config": {
            "provider": "openai-compatible",
            "base_url": llm.base_url,
            "api_key": "sk-lab",
            "model": "lab-model",
        },
    }


async def call_with_consent(live: LiveService, llm: LlmStandIn, destination: str) -> str:
    status, reply = await live.post(
        "/calls/outbound", {"destination": destination, "assistant": consent_assistant(llm)}
    )
    assert status == 200, reply
    call_id = str(reply["call_id"])
    # The first message comes once the caller's answer is known (the key, or the window).
    await wait_transcript(live, call_id, lambda m: m["content"] == FIRST, 30)
    return call_id


async def end_and_read(live: LiveService, call_id: str) -> dict[str, Any]:
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=30)
    assert ended["status"] == "ended"
    said = [(m["role"], m["content"]) for m in ended["messages"]]
    assert said[:2] == [("assistant", DISCLOSURE), ("assistant", FIRST)]
    return ended


def recorded_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path) -> AsyncIterator[LiveService]:
    async with speech_fakes() as (name, _fakes):
        settings = service_settings(lab, tmp_path / "consent.db", "ari")
        settings.speech.stt = settings.speech.tts = name
        settings.egress.allow_loopback = True  # the stand-in LLM is on loopback
        settings.recordings.directory = str(tmp_path / "recordings")
        running = await serve(settings)
        try:
            yield running
        finally:
            await running.client.close()


async def test_the_party_pressing_9_is_not_recorded_and_the_call_goes_on(
    live: LiveService, llm: LlmStandIn, tmp_path: Path
) -> None:
    call_id = await call_with_consent(live, llm, OPTS_OUT_PARTY)
    command = {"type": "inject-context", "content": "Greet them.", "trigger_response": True}
    await control(live, call_id, command)
    request = await llm.wait_request(timeout=30)  # asked after the party's 9
    assert not any("Keypad" in str(m.get("content")) for m in request.messages)
    assert [m for m in request.messages if m["role"] == "user"] == []
    ended = await end_and_read(live, call_id)
    assert ended["consent"]["mode"] == "opt_out_keypad"
    assert ended["consent"]["outcome"] == "refused"
    assert ended["consent"]["at"]
    assert ended["recording_url"] is None
    assert ended["recording_duration_seconds"] is None
    resp = await live.client.get(f"/calls/{call_id}/recording", headers=live.auth())
    assert resp.status == 404
    assert recorded_files(tmp_path / "recordings") == []
    assert not any("Keypad" in m["content"] for m in ended["messages"])


async def test_without_a_key_the_window_passes_and_the_call_is_recorded(
    live: LiveService, llm: LlmStandIn, tmp_path: Path
) -> None:
    call_id = await call_with_consent(live, llm, SILENT_PARTY)
    ended = await end_and_read(live, call_id)
    assert ended["consent"]["outcome"] == "accepted"
    assert ended["recording_url"] == f"/calls/{call_id}/recording"
    assert ended["recording_duration_seconds"] > 5.0  # the disclosure and the window in it
    resp = await live.client.get(ended["recording_url"], headers=live.auth())
    assert resp.status == 200
    assert len(await resp.read()) > 44  # more than a WAV header
    assert len(recorded_files(tmp_path / "recordings")) == 1


async def asked_after_the_first_message(live: LiveService, llm: LlmStandIn, call_id: str) -> None:
    """Ask the model for a reply until it is asked with the first message in its context: the
    call went on past the caller's answer (no transcript shows it)."""
    await live.wait_status(call_id, ("in-progress",), within=30)
    command = {"type": "inject-context", "content": "Greet them.", "trigger_response": True}
    async with asyncio.timeout(45):
        while True:
            await asyncio.sleep(2.0)
            await control(live, call_id, command)
            request = await llm.wait_request(count=len(llm.requests) + 1, timeout=20)
            said = [m.get("content") for m in request.messages if m["role"] == "assistant"]
            if FIRST in said:
                return


async def test_a_refusal_without_transcript_keeps_neither_recording_nor_transcript(
    live: LiveService, llm: LlmStandIn, tmp_path: Path
) -> None:
    assistant = consent_assistant(llm, "no_recording_no_transcript")
    status, reply = await live.post(
        "/calls/outbound", {"destination": OPTS_OUT_PARTY, "assistant": assistant}
    )
    assert status == 200, reply
    call_id = str(reply["call_id"])
    stream = asyncio.create_task(read_stream(live, call_id))
    try:
        await asked_after_the_first_message(live, llm, call_id)
        await control(live, call_id, {"type": "end-call"})
        ended = await wait_recorded(live, call_id, within=30)
        streamed = await stream
    finally:
        stream.cancel()
    assert ended["status"] == "ended"
    assert ended["consent"]["mode"] == "opt_out_keypad"
    assert ended["consent"]["outcome"] == "refused"
    assert ended["messages"] == []  # neither the disclosure, the first message nor a reply
    assert ended["recording_url"] is None
    resp = await live.client.get(f"/calls/{call_id}/recording", headers=live.auth())
    assert resp.status == 404
    assert recorded_files(tmp_path / "recordings") == []
    events, _ = sse_messages(streamed)
    assert [e for e in events if e.get("event") == "status"], streamed  # the stream ran
    assert [e for e in events if e.get("event") == "transcript"] == [], streamed
