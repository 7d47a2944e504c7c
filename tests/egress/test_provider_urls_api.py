"""A provider URL an organization names is scheme, host, port and the provider's path: nothing
that would steer the client's request elsewhere on the server (a query, a fragment, dot
segments, escapes) nor credentials. On a server the operator's networks allow (a local
Ollama), the path is the provider's own: the organization cannot reach another endpoint of it.

Driven through REST on the real app (a fake PBX), and at the connection with the clients the
calls use; the "local Ollama" is a loopback server counting what reaches it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from api.conftest import Api, serving
from fakes.local_server import LocalServer, Scripted
from fakes.world import DESTINATION, make_settings
from voicedock.config import Settings
from voicedock.domain.assistant_config import LlmConfig, RealtimeConfig, SttConfig, TtsConfig
from voicedock.egress import Egress
from voicedock.egress.settings import egress_policy
from voicedock.errors import UnresolvableConfig
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.pipeline.providers.deepgram import DeepgramStt
from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm
from voicedock.pipeline.providers.realtime import RealtimeSpeech

pytestmark = pytest.mark.unit


@pytest.fixture
async def ollama() -> AsyncIterator[LocalServer]:
    """The operator's local model server: chat completions at ``/v1``, and endpoints no
    organization may reach (``/api/pull`` downloads a model of the caller's choosing). It
    records every request; it answers 404 to the ones a test lets through."""
    server = LocalServer()
    server.route("*", "/{tail:.*}")
    async with server:
        yield server


def hits(server: LocalServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


def with_local_model(tmp_path: Path, ollama: LocalServer) -> Settings:
    """The operator's one line for a local model: that host and port, nothing else."""
    settings = make_settings(f"sqlite:///{tmp_path / 'urls.db'}")
    settings.egress.allowed_networks = [f"127.0.0.1:{ollama.port}"]
    return settings


def chat(base_url: str) -> dict[str, Any]:
    return {"provider": "openai-compatible", "base_url": base_url, "model": "llama3"}


async def post(api: Api, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await api.client.post(path, json=body, headers=api.auth())
    return resp.status, await resp.json()


async def test_the_model_download_attack_is_refused_and_the_local_model_still_works(
    tmp_path: Path, ollama: LocalServer
) -> None:
    async with serving(with_local_model(tmp_path, ollama)) as api:
        attack = {"name": "Puller", "llm_config": chat(f"{ollama.url}/api/pull#")}
        status, body = await post(api, "/assistants", attack)
        assert status == 400, body  # the URL's shape: the schema's pattern says so too
        assert body["message"] == (
            "llm_config.base_url: a fragment is not allowed (scheme, host, port and path only)"
        )
        # The fragment's twin, a query; a dot segment; another endpoint of the operator's server.
        for base_url, status_of, reason in [
            (f"{ollama.url}/api/pull?", 400, "a query is not allowed"),
            (f"{ollama.url}/v1/../api/pull", 400, "the path may hold only"),
            (
                f"{ollama.url}/api",
                UnresolvableConfig.status,  # the node's policy: the schema cannot know it
                "on host 127.0.0.1 the path must be /v1 (the provider's own)",
            ),
        ]:
            body = {"name": "P", "llm_config": chat(base_url)}
            status, answer = await post(api, "/assistants", body)
            assert status == status_of, (base_url, answer)
            assert answer["message"].startswith(f"llm_config.base_url: {reason}"), answer
        # Nor on a call, as a transient assistant.
        status, body = await post(
            api,
            "/calls/outbound",
            {
                "destination": DESTINATION,
                "assistant": {"llm_config": chat(f"{ollama.url}/api/pull#")},
            },
        )
        assert status == 400, body
        assert body["message"].startswith("llm_config.base_url: a fragment"), body
        assert api.pbx.originated == []
        # The operator's line still gives organizations the model, at the provider's path.
        status, body = await post(
            api, "/assistants", {"name": "Local", "llm_config": chat(f"{ollama.url}/v1")}
        )
        assert status == 201, body
    assert hits(ollama) == []


# (the key the refusal names, an assistant naming ``url`` there)
def named(url: str) -> list[tuple[str, dict[str, Any]]]:
    ws = url.replace("https://", "wss://")
    key = {"api_key": "k"}
    return [
        ("llm_config.base_url", {"llm_config": {"provider": "openai", "base_url": url, **key}}),
        ("llm_config.base_url", {"llm_config": chat(url)}),
        ("stt_config.base_url", {"stt_config": {"provider": "deepgram", "base_url": url, **key}}),
        ("stt_config.base_url", {"stt_config": {"provider": "openai", "base_url": url, **key}}),
        (
            "tts_config.base_url",
            {"tts_config": {"provider": "elevenlabs", "base_url": url, "voice_id": "v", **key}},
        ),
        ("tts_config.base_url", {"tts_config": {"provider": "openai", "base_url": url, **key}}),
        ("llm_config.url", {"provider": "xai_realtime", "llm_config": {"url": ws, **key}}),
        (
            "llm_config.say_voice.base_url",
            {
                "provider": "xai_realtime",
                "llm_config": {
                    "url": "wss://api.x.ai/v1/realtime",
                    "say_voice": {"provider": "openai", "base_url": url, **key},
                    **key,
                },
            },
        ),
    ]


STEERED = [
    ("https://api.openai.com/v1?purpose=fine-tune", "a query is not allowed"),
    ("https://api.openai.com/v1/files#", "a fragment is not allowed"),
    ("https://api.openai.com/v1?", "a query is not allowed"),
    ("https://admin:hunter2@api.openai.com/v1", "credentials in the URL are not allowed"),
    ("https://api.openai.com/v1/%2e%2e/files", "the path may hold only"),
]
CASES = [(url, reason, i) for url, reason in STEERED for i in range(len(named(url)))]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with serving(make_settings(f"sqlite:///{tmp_path / 'urls.db'}")) as running:
        yield running


@pytest.mark.parametrize(("url", "reason", "i"), CASES)
async def test_a_provider_url_is_scheme_host_port_and_path_only(
    api: Api, url: str, reason: str, i: int
) -> None:
    key, config = named(url)[i]
    status, body = await post(api, "/assistants", {"name": "Steered", **config})
    # say_voice is checked with the assistant's resolved voice, past the body's schema.
    assert status == (UnresolvableConfig.status if "say_voice" in key else 400), body
    assert body["message"].startswith(f"{key}: {reason}"), body
    assert "hunter2" not in str(body)
    listed = await (await api.client.get("/assistants", headers=api.auth())).json()
    assert "Steered" not in [a["name"] for a in listed["assistants"]]


# -- at the connection: the client builds the path from the checked base ----------------------


def local_guard(ollama: LocalServer, tmp_path: Path) -> Egress:
    return Egress(egress_policy(with_local_model(tmp_path, ollama))).for_providers()


async def test_a_chat_client_never_sends_its_request_elsewhere(
    tmp_path: Path, ollama: LocalServer
) -> None:
    """An assistant of the operator's own file, or stored before: the client refuses the base
    URL rather than let it carry the request to ``/api/pull``."""
    guard = local_guard(ollama, tmp_path)
    for base_url in (f"{ollama.url}/api/pull#", f"{ollama.url}/api/pull?x="):
        with pytest.raises(ProviderConfigError, match=r"URL refused: a (fragment|query)"):
            OpenAiCompatLlm.from_config(msgspec.convert(chat(base_url), LlmConfig), egress=guard)
    llm = OpenAiCompatLlm.from_config(
        msgspec.convert(chat(f"{ollama.url}/v1"), LlmConfig), egress=guard
    )
    ollama.replies.append(Scripted(status=404))
    try:
        with pytest.raises(ProviderConfigError, match="HTTP 404"):  # where it was sent
            async for _ in llm.stream([ChatMessage("user", "hi")]):
                pass
    finally:
        await llm.aclose()
    assert hits(ollama) == ["POST /v1/chat/completions"]


async def test_no_client_lets_its_url_or_voice_steer_the_path(
    tmp_path: Path, ollama: LocalServer
) -> None:
    guard = local_guard(ollama, tmp_path)
    with pytest.raises(ProviderConfigError, match="URL refused: a query"):
        RealtimeSpeech(
            RealtimeConfig(api_key="k", url=f"{ollama.url.replace('http', 'ws')}/api/pull?"),
            egress=guard,
        )
    with pytest.raises(ProviderConfigError, match="URL refused: a fragment"):
        DeepgramStt(SttConfig(api_key="k", base_url=f"{ollama.url}/api/pull#"), egress=guard)
    with pytest.raises(ProviderConfigError, match="URL refused: credentials"):
        ElevenLabsTts(TtsConfig(api_key="k", voice_id="v", base_url=f"http://u:p@{ollama.url[7:]}"))
    # A voice id is one path segment, whatever it holds.
    with pytest.raises(ProviderConfigError, match="URL refused: an empty or dot path segment"):
        ElevenLabsTts(TtsConfig(api_key="k", voice_id="..", base_url=ollama.url), egress=guard)
    tts = ElevenLabsTts(
        TtsConfig(api_key="k", voice_id="../../api/pull", base_url=ollama.url), egress=guard
    )
    ollama.replies.append(Scripted(status=404))
    try:
        with pytest.raises(ProviderConfigError, match="HTTP 404"):  # where it was sent
            async for _ in tts.synthesize("Hello."):
                pass
    finally:
        await tts.aclose()
    # One segment (sent as ..%2F..%2Fapi%2Fpull), never the server's /api/pull.
    assert hits(ollama) == ["POST /v1/text-to-speech/../../api/pull/stream"]
