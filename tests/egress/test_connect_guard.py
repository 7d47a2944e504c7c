"""The egress guard where connections are made: a provider host the operator listed whose DNS
answer is (or turns into) a loopback address, a redirect to an internal address, websocket
handshakes, and which hosts a tenant may name at all."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from fakes.local_server import LocalServer, Scripted
from fakes.world import make_settings
from voicedock.config import FallbackPlansSettings, load_settings
from voicedock.domain.assistant_config import RealtimeConfig, SttConfig, TtsConfig
from voicedock.egress import Egress, EgressPolicy, NetworkTarget, provider_url_refusal
from voicedock.egress.guard import address_refusal
from voicedock.egress.settings import egress_policy
from voicedock.errors import ConfigError
from voicedock.pipeline.frames import ChatMessage
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.pipeline.providers.deepgram import DeepgramStt
from voicedock.pipeline.providers.openai_audio import OpenAiTts
from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm
from voicedock.pipeline.providers.realtime import RealtimeSpeech

pytestmark = pytest.mark.unit

HOST = "llm.provider.example"  # listed by the operator; its DNS answers 127.0.0.1
POLICY = EgressPolicy(provider_hosts=(HOST,))


async def rebinding_dns(host: str, port: int) -> list[str]:
    assert host == HOST
    return ["127.0.0.1"]


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    local = LocalServer()
    local.route("*", "/{tail:.*}")
    async with local:
        yield local


def guarded() -> Egress:
    return Egress(POLICY, rebinding_dns)


def on_host(server: LocalServer, scheme: str = "http") -> str:
    return f"{scheme}://{HOST}:{server.port}"


async def test_a_listed_host_passes_the_check_a_tenant_gets_when_configuring() -> None:
    # Only the connection can tell where the name leads: the guarded resolver must.
    assert provider_url_refusal(f"https://{HOST}/v1", POLICY, "/v1") is None


async def test_llm_whose_dns_answer_is_loopback_is_refused_at_connect_time(
    server: LocalServer,
) -> None:
    llm = OpenAiCompatLlm(model="m", base_url=on_host(server) + "/v1", egress=guarded())
    try:
        with pytest.raises(ProviderConfigError, match="loopback address"):
            async for _ in llm.stream([ChatMessage("user", "my card number is ...")]):
                pass
    finally:
        await llm.aclose()
    assert server.requests == []


async def test_tts_whose_dns_answer_is_loopback_is_refused(server: LocalServer) -> None:
    tts = OpenAiTts(TtsConfig(api_key="k", base_url=on_host(server)), egress=guarded())
    try:
        with pytest.raises(ProviderConfigError, match="loopback address"):
            async for _ in tts.synthesize("Hello."):
                pass
    finally:
        await tts.aclose()
    assert server.requests == []


async def test_realtime_websocket_to_a_loopback_answer_is_refused(server: LocalServer) -> None:
    speech = RealtimeSpeech(
        RealtimeConfig(api_key="k", url=on_host(server, "ws") + "/v1/realtime"), egress=guarded()
    )
    try:
        with pytest.raises(ProviderConfigError, match="loopback address"):
            async with speech.connect():
                pass
    finally:
        await speech.aclose()
    assert server.requests == []


async def test_deepgram_streaming_to_a_loopback_answer_is_refused(server: LocalServer) -> None:
    stt = DeepgramStt(SttConfig(api_key="k", base_url=on_host(server) + "/v1"), egress=guarded())
    try:
        with pytest.raises(ProviderConfigError, match="loopback address"):
            async with stt.stream(16000):
                pass
    finally:
        await stt.aclose()
    assert server.requests == []


async def test_a_redirect_to_an_internal_address_is_refused(server: LocalServer) -> None:
    """The operator allows one local port; its server redirects elsewhere on loopback: the
    IP-literal target of the redirect is checked too (the resolver never sees literals)."""
    internal = LocalServer()
    internal.route("*", "/{tail:.*}")
    async with internal:
        location = f"{internal.url}/v1/chat/completions"
        server.replies.append(Scripted(status=307, headers={"Location": location}))
        allowed = NetworkTarget(ipaddress.ip_network("127.0.0.1/32"), server.port)
        egress = Egress(EgressPolicy(allowed=(allowed,)))
        llm = OpenAiCompatLlm(model="m", base_url=server.url + "/v1", egress=egress)
        try:
            with pytest.raises(ProviderConfigError, match="loopback address"):
                async for _ in llm.stream([ChatMessage("user", "hi")]):
                    pass
        finally:
            await llm.aclose()
        assert len(server.requests) == 1  # the allowed one was asked
        assert internal.requests == []  # where it pointed was not


async def test_an_allowed_network_is_reached(server: LocalServer) -> None:
    body = b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n'
    server.replies.append(Scripted(chunks=[body], content_type="text/event-stream"))
    egress = Egress(EgressPolicy(allowed=(NetworkTarget.parse("127.0.0.1/32"),)))
    llm = OpenAiCompatLlm(model="m", base_url=server.url + "/v1", egress=egress)
    try:
        assert [t async for t in llm.stream([ChatMessage("user", "hi")])] == ["Hi"]
    finally:
        await llm.aclose()


@pytest.mark.parametrize(
    ("url", "refusal"),
    [
        ("https://api.openai.com/v1", None),
        ("wss://api.x.ai/v1/realtime", None),
        ("https://api.deepgram.com/v1", None),
        ("https://api.elevenlabs.io", None),
        ("https://evil.example/v1", "host evil.example is not an allowed provider host"),
        ("http://127.0.0.1:11434/v1", "host 127.0.0.1 is not an allowed provider host"),
        ("http://[::1]:8000/v1", "host ::1 is not an allowed provider host"),
        ("http://10.0.0.7/v1", "host 10.0.0.7 is not an allowed provider host"),
        ("http://169.254.169.254/latest", "host 169.254.169.254 is not an allowed provider host"),
        ("http://93.184.216.34/v1", "host 93.184.216.34 is not an allowed provider host"),
        ("http://2130706433/v1", "non-canonical numeric host"),
        ("ftp://api.openai.com/v1", "only http(s) and ws(s) URLs are allowed"),
        ("https://user:pw@api.openai.com/v1", "credentials in the URL are not allowed"),
    ],
)
def test_which_provider_urls_a_tenant_may_name_by_default(url: str, refusal: str | None) -> None:
    assert provider_url_refusal(url, egress_policy(make_settings()), "/v1") == refusal


def test_the_operators_entries_hosts_ports_and_subdomains() -> None:
    settings = make_settings()
    settings.egress.provider_hosts = ["*.openai.azure.com", "llm.internal:8443"]
    settings.egress.allowed_networks = ["127.0.0.1:11434", "10.20.0.0/16"]
    policy = egress_policy(settings)
    assert provider_url_refusal("https://acme.openai.azure.com/v1", policy, "/v1") is None
    assert provider_url_refusal("https://openai.azure.com/v1", policy, "/v1") is not None
    assert provider_url_refusal("https://llm.internal:8443/v1", policy, "/v1") is None
    assert provider_url_refusal("https://llm.internal/v1", policy, "/v1") is not None
    assert (
        provider_url_refusal("https://api.deepgram.com/v1", policy, "/v1") is not None
    )  # replaced
    # The operator's own [speech] URLs stay allowed whatever the list says.
    assert provider_url_refusal("https://api.openai.com/v1", policy, "/v1") is None
    assert provider_url_refusal("http://127.0.0.1:11434/v1", policy, "/v1") is None
    assert provider_url_refusal("http://127.0.0.1:11435/v1", policy, "/v1") is not None
    assert provider_url_refusal("http://10.20.3.4:8000/v1", policy, "/v1") is None
    # The PBX's control ports stay refused whatever is allowed.
    settings.egress.allow_loopback = True
    assert (
        provider_url_refusal("http://127.0.0.1:8088/ari", egress_policy(settings), "/v1")
        is not None
    )


def test_the_operators_own_speech_url_is_allowed_to_providers_only() -> None:
    settings = make_settings()
    settings.speech.openai_base_url = "http://127.0.0.1:11434/v1"  # a local Ollama
    policy = egress_policy(settings)
    assert provider_url_refusal("http://127.0.0.1:11434/v1", policy, "/v1") is None
    loopback = ipaddress.ip_address("127.0.0.1")
    assert address_refusal(loopback, 11434, policy.for_providers()) is None
    # A webhook or tool to the same place is not the operator's provider: still refused.
    assert address_refusal(loopback, 11434, policy) == "loopback address"


def test_the_default_provider_hosts_are_those_of_the_clients_default_urls() -> None:
    from pathlib import Path

    from yarl import URL

    from voicedock.config import DEFAULT_PROVIDER_HOSTS, load_settings
    from voicedock.pipeline.providers.deepgram import DEEPGRAM_BASE_URL
    from voicedock.pipeline.providers.elevenlabs import ELEVENLABS_BASE_URL
    from voicedock.pipeline.providers.openai_audio import OPENAI_BASE_URL
    from voicedock.pipeline.providers.openai_compat import DEFAULT_BASE_URLS
    from voicedock.pipeline.providers.realtime import XAI_REALTIME_URL

    public = [url for name, url in DEFAULT_BASE_URLS.items() if name != "ollama"]  # local
    urls = [*public, OPENAI_BASE_URL, DEEPGRAM_BASE_URL, ELEVENLABS_BASE_URL, XAI_REALTIME_URL]
    assert {URL(url).host for url in urls} == set(DEFAULT_PROVIDER_HOSTS)
    example = Path(__file__).resolve().parents[2] / "voicedock.example.toml"
    assert load_settings(example, environ={}).egress.provider_hosts == list(DEFAULT_PROVIDER_HOSTS)


def test_a_local_ollama_as_the_operators_engine_is_its_own_choice() -> None:
    settings = make_settings()
    assert (
        provider_url_refusal("http://127.0.0.1:11434/v1", egress_policy(settings), "/v1")
        is not None
    )
    settings.speech.llm = "ollama"
    policy = egress_policy(settings)
    assert provider_url_refusal("http://127.0.0.1:11434/v1", policy, "/v1") is None
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), 11434, policy) == "loopback address"


def test_the_urls_of_the_operators_default_plans_are_its_own() -> None:
    settings = make_settings()
    local = "http://127.0.0.1:8001/v1"
    assert provider_url_refusal(local, egress_policy(settings), "/v1") is not None
    settings.speech.fallback_plans = msgspec.convert(
        {
            "llm": [{"provider": "openai-compatible", "base_url": local}, {"provider": "ollama"}],
            "tts": [{"provider": "openai", "base_url": "http://10.0.0.9:8880/v1"}],
        },
        FallbackPlansSettings,
    )
    policy = egress_policy(settings)
    for url in (local, "http://127.0.0.1:11434/v1", "http://10.0.0.9:8880/v1"):
        assert provider_url_refusal(url, policy, "/v1") is None, url
    # To providers only: a webhook or tool to the same place is still refused.
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), 8001, policy) == "loopback address"


def test_a_listed_ip_address_is_still_judged_by_its_address() -> None:
    settings = make_settings()
    settings.egress.provider_hosts = ["10.0.0.7:8000", "93.184.216.34"]
    policy = egress_policy(settings)
    assert provider_url_refusal("http://10.0.0.7:8000/v1", policy, "/v1") == "private address"
    assert provider_url_refusal("http://93.184.216.34/v1", policy, "/v1") is None
    settings.egress.allowed_networks = ["10.0.0.7:8000"]
    assert provider_url_refusal("http://10.0.0.7:8000/v1", egress_policy(settings), "/v1") is None


def test_the_operators_entry_or_speech_url_fixes_the_path_on_its_host(tmp_path: Path) -> None:
    config = tmp_path / "voicedock.toml"
    config.write_text(
        "[speech]\n"
        'openai_base_url = "http://10.0.0.5:8000/openai/v1"\n'
        "[egress]\n"
        'provider_hosts = ["llm.internal:8000/v1", "gateway.example.com"]\n'
    )
    policy = egress_policy(load_settings(config, environ={}))
    assert provider_url_refusal("https://llm.internal:8000/v1/", policy, "/v1") is None
    assert provider_url_refusal("https://llm.internal:8000/admin", policy, "/v1") == (
        "on host llm.internal the path must be /v1 (the operator's)"
    )
    # An entry without a path: a public API's own layout (OpenRouter's /api/v1).
    assert provider_url_refusal("https://gateway.example.com/api/v1", policy, "/v1") is None
    assert provider_url_refusal("http://10.0.0.5:8000/openai/v1", policy, "/v1") is None
    assert provider_url_refusal("http://10.0.0.5:8000/v1", policy, "/v1") == (
        "on host 10.0.0.5 the path must be /openai/v1 (the operator's)"
    )


def test_an_allowed_network_serves_the_providers_own_path_only() -> None:
    settings = make_settings()
    settings.egress.allowed_networks = ["127.0.0.1:11434"]
    policy = egress_policy(settings)
    assert provider_url_refusal("http://127.0.0.1:11434/v1", policy, "/v1") is None
    assert provider_url_refusal("ws://127.0.0.1:11434/v1/realtime", policy, "/v1/realtime") is None
    assert provider_url_refusal("http://127.0.0.1:11434", policy, "") is None  # ElevenLabs
    for path in ("/api/pull", "/", "/v1/models", "/v2"):
        assert provider_url_refusal(f"http://127.0.0.1:11434{path}", policy, "/v1") == (
            "on host 127.0.0.1 the path must be /v1 (the provider's own)"
        )


@pytest.mark.parametrize(
    "entry", ["llm.internal:8000/v1/../admin", "llm.internal/v1?x", "https://llm.internal/v1"]
)
def test_a_provider_host_entry_with_a_path_names_one_plain_path(tmp_path: Path, entry: str) -> None:
    config = tmp_path / "voicedock.toml"
    config.write_text(f'[egress]\nprovider_hosts = ["{entry}"]\n')
    with pytest.raises(ConfigError, match=re.escape("egress.provider_hosts[0]")):
        load_settings(config, environ={})
