"""A client organization names a server on the node's own network as its speech provider, tool
server or webhook: the node refuses before anything is contacted or dialled, unless the
operator allowed that network (a local model is one line of ``[egress]``). A provider that
answers without end fails its turn, never the call or the node.

The hostile server is a loopback HTTP server counting every request it receives (an internal
service nobody allowed); the PBX is the lab Asterisk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from e2e.audio_helpers import UTTERANCE_PARTY, require_offline_speech
from e2e.test_audio_e2e import control, wait_recorded
from fakes.llm_standin import LlmStandIn, chat_chunk
from fakes.local_server import LocalServer
from tenancy.conftest import Tenants
from voicedock.config import Settings
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.whisper.stt import WhisperStt
from voicedock_lab.server import LabAsterisk

pytestmark = pytest.mark.asterisk

# Dialled by the refused calls: the lab would answer it, so a call that slipped through shows.
DESTINATION = UTTERANCE_PARTY


class Hostile:
    """An internal HTTP service on 127.0.0.1: counts what reaches it, answers nothing useful."""

    def __init__(self) -> None:
        self.server = LocalServer()
        self.server.route("*", "/{tail:.*}", self._handle)
        self.hits: list[str] = []

    @property
    def url(self) -> str:
        return self.server.url

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(f"{request.method} {request.path}")
        return web.json_response({"secret": "internal"})


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    async with server.server:
        yield server


def pbx_channels(lab: LabAsterisk, number: str) -> list[str]:
    """The lab's channels that dialled ``number`` (its digits appear in the channel data)."""
    digits = number.lstrip("+")
    out = lab.cli("core show channels concise")
    return [line for line in out.splitlines() if digits in line]


def transient(section: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"first_message": "Hello.", section: value}


def refused_configs(url: str) -> list[tuple[str, dict[str, Any]]]:
    """(the key the 400 must name, an assistant configuration naming ``url`` there)."""
    return [
        (
            "llm_config.base_url",
            transient(
                "llm_config",
                {"provider": "openai-compatible", "base_url": url + "/v1", "model": "m"},
            ),
        ),
        (
            "llm_config.base_url",
            transient("llm_config", {"provider": "openai", "base_url": url + "/v1"}),
        ),
        (
            "llm_config.url",
            {
                "provider": "xai_realtime",
                "llm_config": {
                    "url": url.replace("http://", "ws://") + "/v1/realtime",
                    "api_key": "k",
                },
            },
        ),
        (
            "stt_config.base_url",
            transient("stt_config", {"provider": "deepgram", "base_url": url, "api_key": "k"}),
        ),
        (
            "stt_config.base_url",
            transient("stt_config", {"provider": "openai", "base_url": url, "api_key": "k"}),
        ),
        (
            "tts_config.base_url",
            transient(
                "tts_config",
                {"provider": "elevenlabs", "base_url": url, "api_key": "k", "voice_id": "v"},
            ),
        ),
        (
            "tts_config.base_url",
            transient("tts_config", {"provider": "openai", "base_url": url, "api_key": "k"}),
        ),
        (
            "tools[0].server.url",
            {
                "first_message": "Hello.",
                "tools": [{"type": "webhook", "name": "lookup", "server": {"url": url + "/t"}}],
            },
        ),
    ]


CASES = [key for key, _ in refused_configs("http://127.0.0.1:1")]
CASE_IDS = [f"{i}-{key}" for i, key in enumerate(CASES)]


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASE_IDS)
async def test_a_transient_assistant_naming_an_internal_server_is_refused_before_dialling(
    tenants: Tenants, hostile: Hostile, lab: LabAsterisk, case: int
) -> None:
    key, assistant = refused_configs(hostile.url)[case]
    status, body = await tenants.service.post(
        "/calls/outbound", {"destination": DESTINATION, "assistant": assistant}
    )
    assert status == 400, body  # valid by the schema, refused by the egress policy
    assert body["message"].startswith(f"{key}: "), body
    assert "127.0.0.1" in body["message"] or "loopback" in body["message"], body
    await asyncio.sleep(0.5)  # anything that slipped through would have connected by now
    assert hostile.hits == []
    _, calls = await tenants.service.get("/calls")
    assert calls["calls"] == [], calls  # nothing stored, nothing placed
    assert pbx_channels(lab, DESTINATION) == []


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASE_IDS)
async def test_saving_an_assistant_naming_an_internal_server_is_refused(
    tenants: Tenants, hostile: Hostile, case: int
) -> None:
    key, assistant = refused_configs(hostile.url)[case]
    status, body = await tenants.service.post("/assistants", {"name": "Sneaky", **assistant})
    assert status == 400, body
    assert body["message"].startswith(f"{key}: "), body
    # Nor by PATCH on the example's own assistant.
    _, listed = await tenants.service.get("/assistants")
    (support,) = [a for a in listed["assistants"] if a["name"] == "Customer Support"]
    resp = await tenants.service.client.patch(
        f"/assistants/{support['id']}", json=assistant, headers=tenants.service.auth()
    )
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["message"].startswith(f"{key}: ")
    assert hostile.hits == []
    _, after = await tenants.service.get(f"/assistants/{support['id']}")
    assert hostile.url not in str(after)


async def test_an_override_naming_an_internal_llm_is_refused(
    tenants: Tenants, hostile: Hostile, lab: LabAsterisk
) -> None:
    _, listed = await tenants.service.get("/assistants")
    (support,) = [a for a in listed["assistants"] if a["name"] == "Customer Support"]
    override = {"llm_config": {"provider": "ollama"}}  # its default URL is 127.0.0.1:11434
    status, body = await tenants.service.post(
        "/calls/outbound",
        {"destination": DESTINATION, "assistant_id": support["id"], "assistant_override": override},
    )
    assert status == 400, body
    assert body["message"].startswith("llm_config.base_url: host 127.0.0.1 is not an allowed")
    override = {"llm_config": {"provider": "openai", "base_url": hostile.url + "/v1"}}
    status, body = await tenants.service.post(
        "/calls/outbound",
        {"destination": DESTINATION, "assistant_id": support["id"], "assistant_override": override},
    )
    assert status == 400, body
    assert body["message"] == "llm_config.base_url: host 127.0.0.1 is not an allowed provider host"
    assert hostile.hits == []
    assert pbx_channels(lab, DESTINATION) == []


async def test_webhooks_and_tool_templates_naming_an_internal_server_are_refused(
    tenants: Tenants, hostile: Hostile
) -> None:
    status, body = await tenants.service.post("/webhooks", {"url": hostile.url + "/hook"})
    assert status == 400, body  # documented: {"error": "Webhook URL refused"}
    assert body["error"] == "Webhook URL refused"
    assert "loopback" in body["message"]
    tool = {"type": "webhook", "name": "lookup", "server": {"url": hostile.url + "/tool"}}
    status, body = await tenants.service.post("/tool-templates", tool)
    assert status == 400, body
    assert body["error"] == "URL refused"
    assert body["message"] == "body.server.url: loopback address"
    assert hostile.hits == []


# -- the operator's one line: a local model ------------------------------------------------


@pytest.fixture
async def local_llm() -> AsyncIterator[LlmStandIn]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


REPLY = "Monday at nine is free."


@pytest.mark.e2e
async def test_a_local_model_the_operator_allowed_gets_the_calls_turns(
    local_model_allowed: Settings, tenants: Tenants, local_llm: LlmStandIn
) -> None:
    live = tenants.service
    llm_config = {"provider": "openai-compatible", "base_url": local_llm.base_url, "model": "m"}
    status, saved = await live.post("/assistants", {"name": "Local", "llm_config": llm_config})
    assert status == 201, saved
    assistant = {"first_message": "Riverside dental clinic.", "llm_config": llm_config}
    status, placed = await live.post(
        "/calls/outbound", {"destination": UTTERANCE_PARTY, "assistant": assistant}
    )
    assert status == 200, placed
    call_id = str(placed["call_id"])
    request = await local_llm.wait_request(timeout=30)
    assert "monday" in request.last_user_text.lower(), request.last_user_text
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["status"] == "ended"
    assert REPLY in [m["content"] for m in ended["messages"] if m["role"] == "assistant"]


# -- an endless answer ----------------------------------------------------------------------


class EndlessLlm:
    """A chat-completions server that streams keep-alive bytes and never ends the reply;
    records how much it wrote before the client went away."""

    CHUNK = b": " + b"x" * 16_000 + b"\n"

    def __init__(self) -> None:
        self.server = LocalServer()
        self.server.route("POST", "/v1/chat/completions", self._handle)
        self.written = 0
        self.client_gone = asyncio.Event()
        self.requests = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await response.write(chat_chunk(None, role=True))
            while True:
                await response.write(self.CHUNK)
                self.written += len(self.CHUNK)
                await asyncio.sleep(0)
        except (ConnectionError, RuntimeError):
            self.client_gone.set()
        return response


@pytest.fixture
async def endless_llm() -> AsyncIterator[EndlessLlm]:
    require_offline_speech()
    await WhisperStt().warm_up()
    await PiperTts().warm_up()
    server = EndlessLlm()
    async with server.server:
        yield server


@pytest.mark.e2e
async def test_an_endless_llm_answer_is_cut_at_the_cap_and_the_call_goes_on(
    local_model_allowed: Settings, tenants: Tenants, endless_llm: EndlessLlm
) -> None:
    live = tenants.service
    llm_config = {
        "provider": "openai-compatible",
        "base_url": endless_llm.server.url + "/v1",
        "model": "m",
    }
    assistant = {"first_message": "Riverside dental clinic.", "llm_config": llm_config}
    status, placed = await live.post(
        "/calls/outbound", {"destination": UTTERANCE_PARTY, "assistant": assistant}
    )
    assert status == 200, placed
    call_id = str(placed["call_id"])
    await asyncio.wait_for(endless_llm.client_gone.wait(), 40)
    cap = live.service.webhooks.egress.caps.llm_reply_bytes
    assert cap <= endless_llm.written <= cap + 4 * len(EndlessLlm.CHUNK) + 65_536 * 4
    # The turn failed; the call and the node did not.
    await asyncio.sleep(1.0)
    assert (await live.call(call_id))["status"] == "in-progress"
    status, _ = await live.get("/assistants")
    assert status == 200
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)
    assert ended["status"] == "ended"
    assert ended["end_reason"] == "api-end-call", ended
