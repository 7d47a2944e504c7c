"""A speech-to-speech call whose realtime session fails, on a real call (REST → engine → lab
Asterisk → a party that keeps talking): the assistant's session (a stand-in speaking xAI's
realtime websocket) answers the first exchange and then drops; the call goes on with the
pipeline its ``llm_config.fallback_plan`` names (Whisper, an OpenAI-compatible LLM stand-in,
the ``say_voice``), which receives the conversation so far and answers the party's later turns;
the call's record has those replies and the ``provider-switch`` event, and it ends normally. An
assistant that names no pipeline goes on the same way with the operator's default LLM plan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from e2e.audio_helpers import require_offline_speech, words
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from fakes.llm_standin import LlmStandIn
from fakes.local_server import LocalServer
from pipeline.cloud.fake_realtime import RealtimeScript, realtime_handler
from voicedock.config import FallbackPlansSettings
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk
from voicedock_lab.utterances import APPOINTMENT

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

TALKER = "+31612345693"  # the lab's soak party: says its appointment sentence every ~4 s
XAI_KEY = "xai-acme-own-0123456789"
GREETING = "Hello, this is the clinic."
HEARD = "Good morning, I am calling about my appointment."  # what the session heard first
ANSWER = "Monday at nine is free."  # the pipeline's LLM, for every later turn


@pytest.fixture
async def session() -> AsyncIterator[tuple[LocalServer, RealtimeScript]]:
    """The realtime stand-in: the caller's first turn, from 4.5 s (the greeting said) to 5.5 s
    of their audio, is heard as ``HEARD`` and answered ("Hi"); then the session drops."""
    script = RealtimeScript(
        token=XAI_KEY,
        turn_starts_at_frame=225,
        turn_after_frames=275,
        user_says=HEARD,
        drop_after_replies=1,
    )
    server = LocalServer()
    server.route("GET", "/v1/realtime", realtime_handler(script))
    async with server:
        yield server, script


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=ANSWER) as standin:
        yield standin


@asynccontextmanager
async def service(
    lab: LabAsterisk, tmp_path: Path, own_servers: list[str], operator_llm: LlmStandIn | None
) -> AsyncIterator[LiveService]:
    """The service; ``operator_llm``: the operator's default LLM plan, that model."""
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    # The organization's own servers, on loopback here (listed as providers' hosts).
    settings.egress.allow_loopback = True
    for url in own_servers:
        settings.egress.provider_hosts.append(url.removeprefix("http://").split("/")[0])
    if operator_llm is not None:
        entry = {"provider": "openai-compatible", "base_url": operator_llm.base_url}
        entry |= {"api_key": "sk-operator-backup", "model": "backup"}
        plans = {"llm": [entry]}
        settings.speech.fallback_plans = msgspec.convert(plans, FallbackPlansSettings)
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


@pytest.fixture
async def live(
    lab: LabAsterisk,
    tmp_path: Path,
    session: tuple[LocalServer, RealtimeScript],
    llm: LlmStandIn,
) -> AsyncIterator[LiveService]:
    async with service(lab, tmp_path, [session[0].url, llm.base_url], None) as running:
        yield running


@pytest.fixture
async def operator_live(
    lab: LabAsterisk,
    tmp_path: Path,
    session: tuple[LocalServer, RealtimeScript],
    llm: LlmStandIn,
) -> AsyncIterator[LiveService]:
    """The service with ``llm`` as the operator's default LLM plan (not listed: the operator's)."""
    async with service(lab, tmp_path, [session[0].url], llm) as running:
        yield running


def assistant(realtime_url: str, llm: LlmStandIn | None) -> dict[str, Any]:
    """``llm`` None: the assistant names no pipeline."""
    realtime: dict[str, Any] = {"url": realtime_url, "api_key": XAI_KEY, "voice": "Ara"}
    if llm is not None:
        entry = {"provider": "openai-compatible", "base_url": llm.base_url}
        realtime["fallback_plan"] = [entry | {"api_key": "sk-org-own", "model": "backup"}]
    return {
        "provider": "xai_realtime",
        "system_prompt": "You book appointments for the clinic.",
        "first_message": GREETING,
        "llm_config": realtime,
    }


async def test_a_session_that_drops_leaves_the_call_to_the_assistants_pipeline(
    live: LiveService, session: tuple[LocalServer, RealtimeScript], llm: LlmStandIn
) -> None:
    await goes_on_with_the_pipeline(live, session, llm, own=True, key="sk-org-own")


async def test_a_session_without_a_plan_goes_on_with_the_operators_default_plan(
    operator_live: LiveService, session: tuple[LocalServer, RealtimeScript], llm: LlmStandIn
) -> None:
    await goes_on_with_the_pipeline(
        operator_live, session, llm, own=False, key="sk-operator-backup"
    )


async def goes_on_with_the_pipeline(
    live: LiveService,
    session: tuple[LocalServer, RealtimeScript],
    llm: LlmStandIn,
    *,
    own: bool,
    key: str,
) -> None:
    """A call whose session drops after the first exchange; ``own``: the assistant names the
    pipeline (else the operator's default LLM plan is ``llm``), whose model takes ``key``."""
    server, script = session
    realtime_url = server.url.replace("http://", "ws://") + "/v1/realtime"
    resp = await live.client.post(
        "/calls/outbound",
        json={"destination": TALKER, "assistant": assistant(realtime_url, llm if own else None)},
        headers=live.auth(),
    )
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await script.disconnected.wait()  # the first exchange, then the session dropped
    first = await llm.wait_request(timeout=40)  # the party's next turn, heard by Whisper
    second = await llm.wait_request(2, timeout=40)  # and the next: the party keeps being answered
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=20)

    assert (ended["status"], ended["end_reason"]) == ("ended", "api-end-call"), ended
    assert script.connections == 1  # the session was not opened again
    # The pipeline's model: the same instructions, then the call so far, then the party.
    assert "appointments for the clinic" in (first.system_prompt or "")
    history = [(m["role"], m["content"]) for m in first.messages[1:4]]
    assert history == [("assistant", GREETING), ("user", HEARD), ("assistant", "Hi")]
    assert first.messages[-1]["role"] == "user"
    # Its own turns go on from there (the first one may be the end of a sentence the party
    # was saying when the session dropped).
    assert [(m["role"], m["content"]) for m in second.messages[1:4]] == history
    assert words(APPOINTMENT.text) & words(second.last_user_text) >= {"appointment", "monday"}
    assert first.authorization == f"Bearer {key}"
    # The call's record: the whole conversation, each message once, and the move.
    said = [m["content"] for m in ended["messages"] if m["role"] == "assistant"]
    assert said[:2] == [GREETING, "Hi"]
    assert said.count(ANSWER) >= 2
    assert [m["content"] for m in ended["messages"]].count(HEARD) == 1
    switches = [e["data"] for e in ended["events"] if e["type"] == "provider-switch"]
    port = server.url.rsplit(":", 1)[1]
    backup = f"openai-compatible/{llm.base_url.split('/')[2]}/backup"
    assert switches == [
        {
            "engine": "realtime",
            "from": f"xai_realtime/127.0.0.1:{port}",
            "to": backup,
            "reason": "connection",
        }
    ]
    # The turns the pipeline served name its providers (Whisper, the backup, the say voice:
    # Piper), and they are billed what they heard and said after the switch; what the session
    # heard and said stays the session's.
    served = [t for t in ended["latency"] if t["llm_provider"] is not None]
    assert len(served) >= 2
    assert {(t["stt_provider"], t["llm_provider"], t["tts_provider"]) for t in served} == {
        ("faster_whisper", backup, "piper")
    }
    usage = ended["usage"]
    assert [e["provider"] for e in usage["stt"]] == ["xai_realtime", "faster_whisper"]
    assert usage["stt"][1]["audio_seconds"] > 0, usage  # the party's turns Whisper heard
    assert [e["provider"] for e in usage["tts"]] == ["xai_realtime", "piper"]
    assert usage["tts"][0]["characters"] == len(GREETING + "Hi")
    assert usage["tts"][1]["characters"] >= 2 * len(ANSWER)
