"""The URLs an assistant configuration names, checked against the operator's egress policy
when the configuration is given (a 400 naming the key), before anything is saved or dialled.

* speech providers: ``stt_config``/``llm_config``/``tts_config`` ``base_url`` (or the
  provider's default URL when none is named) and their fallback plans' entries, the realtime
  ``llm_config.url``, its ``say_voice`` and the LLMs of its fallback plan: scheme, host, port
  and path only, on an allowed provider host, with the provider's own path on a host the
  operator's networks allow (``voicedock.egress.providers``);
* tools: ``tools[i].server.url`` must not name a refused address (a DNS name is checked when
  the tool is called, as every connection is).

The same policy is enforced again when the connection is made (``voicedock.egress.guard``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from voicedock.calls.assistants.providers import SPEECH_TO_SPEECH
from voicedock.domain.json import JsonValue
from voicedock.domain.provider_urls import url_path
from voicedock.domain.tenant_provider_fields import FALLBACK_PLAN
from voicedock.egress import EgressPolicy, provider_url_refusal
from voicedock.egress.guard import literal_refusal
from voicedock.errors import BadRequest

# Providers whose URL, when the section names none, is the operator's [speech] one.
_OPERATOR_URL_PROVIDERS = frozenset({"openai", "mistral"})
# Where an OpenAI-compatible server without a default URL serves its API (vLLM, llama.cpp,
# LM Studio, Ollama): the only path on a server of the operator's networks.
OPENAI_COMPATIBLE_PATH = "/v1"


def check_tenant_urls(config: Mapping[str, JsonValue], policy: EgressPolicy) -> None:
    """400 (``BadRequest``) naming the first key whose URL the policy refuses."""
    pipeline: tuple[str, ...] = ("stt_config", "llm_config", "tts_config")
    if config.get("provider") in SPEECH_TO_SPEECH:
        pipeline = ("stt_config", "tts_config")  # with the LLMs of its fallback plan
        llm = config.get("llm_config")
        if isinstance(llm, Mapping):
            realtime = str(config["provider"])
            _check_url("llm_config.url", llm.get("url"), _realtime_default(), policy, realtime)
            say = llm.get("say_voice")
            if isinstance(say, Mapping):
                _check_section("llm_config.say_voice", "tts_config", say, policy)
            _check_plan("llm_config", llm, policy)
    for key in pipeline:
        section = config.get(key)
        if isinstance(section, Mapping):
            _check_section(key, key, section, policy)
            _check_plan(key, section, policy)
    tools = config.get("tools")
    if isinstance(tools, Sequence):
        for i, tool in enumerate(tools):
            if isinstance(tool, Mapping):
                check_tool_url(tool, f"tools[{i}]", policy)


def _check_plan(key: str, section: Mapping[str, JsonValue], policy: EgressPolicy) -> None:
    """The entries of ``section``'s fallback plan, ``key`` sections each."""
    plan = section.get(FALLBACK_PLAN)
    for index, entry in enumerate(plan if isinstance(plan, Sequence) else ()):
        if isinstance(entry, Mapping):
            _check_section(f"{key}.{FALLBACK_PLAN}[{index}]", key, entry, policy)


def check_tool_url(tool: Mapping[str, JsonValue], where: str, policy: EgressPolicy) -> None:
    """400 ``URL refused`` when a tool's own server URL names an address the policy refuses
    (or none)."""
    server = tool.get("server")
    url = server.get("url") if isinstance(server, Mapping) else None
    if isinstance(url, str):
        reason = literal_refusal(url, policy)
        if reason is not None:
            raise BadRequest(f"{where}.server.url: {reason}", error="URL refused")


def _check_section(
    name: str, kind: str, section: Mapping[str, JsonValue], policy: EgressPolicy
) -> None:
    provider = str(section.get("provider", ""))
    default = default_provider_url(kind, provider)
    if default is None and "base_url" not in section:
        return  # an offline engine: no URL
    if "base_url" not in section and provider in _OPERATOR_URL_PROVIDERS:
        return  # the operator's own [speech] URL for it
    _check_url(f"{name}.base_url", section.get("base_url"), default, policy, provider)


def _check_url(
    key: str, value: object, default: str | None, policy: EgressPolicy, provider: str = ""
) -> None:
    standard = url_path(default) if default is not None else OPENAI_COMPATIBLE_PATH
    if value is None:
        if default is None:
            return
        reason = provider_url_refusal(default, policy, standard)
        if reason is not None:
            raise BadRequest(f"{key}: {reason} (the default URL of provider {provider})")
        return
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key} must be a URL")
    reason = provider_url_refusal(value, policy, standard)
    if reason is not None:
        raise BadRequest(f"{key}: {reason}")


def default_provider_url(kind: str, provider: str) -> str | None:
    """The URL a cloud provider's client connects to when its section names none."""
    if kind == "llm_config":
        from voicedock.pipeline.providers.openai_compat import DEFAULT_BASE_URLS

        return DEFAULT_BASE_URLS.get(provider)
    if provider == "openai":
        from voicedock.pipeline.providers.openai_audio import OPENAI_BASE_URL

        return OPENAI_BASE_URL
    if kind == "stt_config" and provider == "deepgram":
        from voicedock.pipeline.providers.deepgram import DEEPGRAM_BASE_URL

        return DEEPGRAM_BASE_URL
    if kind == "tts_config" and provider == "elevenlabs":
        from voicedock.pipeline.providers.elevenlabs import ELEVENLABS_BASE_URL

        return ELEVENLABS_BASE_URL
    return None


def _realtime_default() -> str:
    from voicedock.pipeline.providers.realtime import XAI_REALTIME_URL

    return XAI_REALTIME_URL
