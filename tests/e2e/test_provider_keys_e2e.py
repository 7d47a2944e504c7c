"""An organization's own provider key on a real call: REST → a provider key and an assistant
referencing it by name → lab Asterisk → a speaking party → the OpenAI-compatible LLM stand-in
(the operator's ``[speech] openai_base_url``), which must receive the organization's key, not
the operator's — and after a rotation, the new key. Where the operator requires organizations'
keys (``[byok] mode = "required"``), a speech-to-speech call reaches its realtime and speech
stand-ins with the organization's keys only, and one that would speak in the operator's voice
is refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from e2e.audio_helpers import SILENT_PARTY, wait_transcript
from e2e.conftest import LiveService, serve, service_settings
from e2e.test_audio_e2e import control, wait_recorded
from e2e.test_calls_e2e import until, wait_status
from e2e.test_llm_e2e import OPERATOR_KEY, converse, llm  # noqa: F401 (the fixture)
from fakes.llm_standin import LlmStandIn
from fakes.local_server import LocalServer
from pipeline.cloud.fake_realtime import RealtimeScript, realtime_handler
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

ORG_KEY = "sk-acme-own-0123456789-first"
ROTATED = "sk-acme-own-0123456789-second"


@pytest.fixture
async def live(lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn) -> AsyncIterator[LiveService]:  # noqa: F811
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = OPERATOR_KEY
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_the_llm_receives_the_organizations_key_and_after_rotation_the_new_one(
    live: LiveService,
    llm: LlmStandIn,  # noqa: F811
    tmp_path: Path,
) -> None:
    h = live.auth()
    body = {"name": "acme-openai", "provider": "openai", "api_key": ORG_KEY}
    resp = await live.client.post("/provider-keys", json=body, headers=h)
    assert resp.status == 201, await resp.text()
    key_id = (await resp.json())["id"]
    assistant = {
        "name": "Own key",
        "first_message": "Riverside dental clinic.",
        "stt_config": {"provider": "offline"},
        "tts_config": {"provider": "offline"},
        "llm_config": {"provider": "openai", "api_key_ref": "acme-openai"},
    }
    resp = await live.client.post("/assistants", json=assistant, headers=h)
    assert resp.status == 201, await resp.text()
    assistant_id = (await resp.json())["id"]

    first = await converse(live, llm, {"assistant_id": assistant_id})
    assert first.authorization == f"Bearer {ORG_KEY}"

    resp = await live.client.patch(f"/provider-keys/{key_id}", json={"api_key": ROTATED}, headers=h)
    assert resp.status == 200, await resp.text()
    llm.requests.clear()
    second = await converse(live, llm, {"assistant_id": assistant_id})
    assert second.authorization == f"Bearer {ROTATED}"
    # The keys are nowhere in what the API answers, nor in clear in the database.
    calls = await live.client.get("/calls", headers=h)
    listed = await calls.text()
    assert ORG_KEY not in listed
    assert ROTATED not in listed
    for path in tmp_path.glob("e2e.db*"):
        data = path.read_bytes()
        assert ORG_KEY.encode() not in data, path
        assert ROTATED.encode() not in data, path


# --- [byok] mode = "required": a speech-to-speech call on the organization's keys only -----

OPERATOR_OPENAI = "sk-lab-operator-openai-0123"
OPERATOR_XAI = "xai-lab-operator-0123456789"
ORG_XAI = "xai-acme-own-0123456789abcd"
ORG_OPENAI = "sk-acme-own-voice-0123456789"
GREETING = "Riverside dental clinic, you are speaking to our assistant."
SAID = "Your appointment is confirmed."
TONE = b"\x00\x10\x00\xf0" * 6_000  # 0.5 s of 24 kHz PCM: what OpenAI's speech answers


@dataclass
class Cloud:
    """OpenAI's speech endpoint (the operator's ``openai_base_url``) and an xAI realtime
    endpoint on one loopback server: every request's ``Authorization`` is kept."""

    server: LocalServer
    script: RealtimeScript
    authorizations: list[str] = field(default_factory=list)
    spoken: list[str] = field(default_factory=list)  # the texts synthesized

    @property
    def realtime_url(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/v1/realtime"

    async def speech(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.server.record(request)
        self.authorizations.append(recorded.headers.get("Authorization", ""))
        self.spoken.append(str(json.loads(recorded.body).get("input", "")))
        if recorded.headers.get("Authorization") != f"Bearer {ORG_OPENAI}":
            return web.json_response({"error": {"message": "Incorrect API key"}}, status=401)
        return web.Response(body=TONE, content_type="application/octet-stream")

    def realtime(self) -> Any:
        session = realtime_handler(self.script)

        async def handler(request: web.Request) -> web.StreamResponse:
            self.authorizations.append(request.headers.get("Authorization", ""))
            return await session(request)

        return handler


@pytest.fixture
async def cloud() -> AsyncIterator[Cloud]:
    # The silent party says nothing: the call's words are voicedock's (the greeting, a say),
    # in the organization's voice.
    script = RealtimeScript(token=ORG_XAI, silent_caller=True)
    standin = Cloud(LocalServer(), script)
    standin.server.route("POST", "/v1/audio/speech", standin.speech)
    standin.server.route("GET", "/v1/realtime", standin.realtime())
    async with standin.server:
        yield standin


@pytest.fixture
async def required(lab: LabAsterisk, tmp_path: Path, cloud: Cloud) -> AsyncIterator[LiveService]:
    settings = service_settings(lab, tmp_path / "e2e.db", "ari")
    settings.byok.mode = "required"
    settings.egress.allow_loopback = True  # the realtime stand-in
    # One loopback server plays both clouds: listed as a public provider's host is (any path).
    settings.egress.provider_hosts.append(cloud.server.url.removeprefix("http://"))
    settings.speech.tts = "openai"  # the operator's voice, with the operator's key
    settings.speech.openai_base_url = cloud.server.url + "/v1"
    settings.speech.openai_api_key = OPERATOR_OPENAI
    settings.speech.xai_api_key = OPERATOR_XAI
    running = await serve(settings)
    try:
        yield running
    finally:
        await running.client.close()


async def test_a_speech_to_speech_call_reaches_the_cloud_with_the_organizations_keys_only(
    required: LiveService, cloud: Cloud
) -> None:
    live = required
    h = live.auth()
    for body in (
        {"name": "acme-xai", "provider": "xai", "api_key": ORG_XAI},
        {"name": "acme-openai", "provider": "openai", "api_key": ORG_OPENAI},
    ):
        resp = await live.client.post("/provider-keys", json=body, headers=h)
        assert resp.status == 201, await resp.text()
    realtime = {"api_key_ref": "acme-xai", "url": cloud.realtime_url, "voice": "Ara"}
    assistant: dict[str, Any] = {
        "provider": "xai_realtime",
        "first_message": GREETING,
        "llm_config": realtime,
    }
    # Without a voice of its own, the greeting and every `say` would be the operator's OpenAI
    # voice on the operator's key: refused, nothing dialled, nothing sent.
    call = {"destination": SILENT_PARTY, "assistant": assistant}
    resp = await live.client.post("/calls/outbound", json=call, headers=h)
    assert resp.status == 400, await resp.text()
    assert "llm_config.say_voice.api_key_ref is required" in (await resp.json())["message"]
    assert cloud.authorizations == []

    say_voice = {"provider": "openai", "voice": "nova", "api_key_ref": "acme-openai"}
    assistant["llm_config"] = {**realtime, "say_voice": say_voice}
    resp = await live.client.post("/calls/outbound", json=call, headers=h)
    assert resp.status == 200, await resp.text()
    call_id = str((await resp.json())["call_id"])
    await wait_status(live, call_id, ("in-progress",), within=20)
    await until(lambda: _connected(cloud), 15)
    await control(live, call_id, {"type": "say", "content": SAID})
    await wait_transcript(live, call_id, lambda m: m["content"] == SAID, within=20)
    await control(live, call_id, {"type": "end-call"})
    ended = await wait_recorded(live, call_id, within=15)

    assert ended["status"] == "ended", ended
    assert GREETING in cloud.spoken
    assert SAID in cloud.spoken
    assert cloud.script.events[0]["type"] == "session.update"  # the realtime session opened
    assert set(cloud.authorizations) == {f"Bearer {ORG_XAI}", f"Bearer {ORG_OPENAI}"}
    for request in cloud.server.requests:  # no header of any request carries them
        assert not {OPERATOR_OPENAI, OPERATOR_XAI} & set(" ".join(request.headers.values()).split())


async def _connected(cloud: Cloud) -> bool:
    return bool(cloud.script.events)
