"""The operator's [speech] API keys reach the cloud providers an assistant names, unless the
operator requires organizations' own keys."""

from __future__ import annotations

from typing import Any

import pytest

from voicedock.calls.live.providers import _section, build_providers, build_tts
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.providers.base import ProviderConfigError

pytestmark = pytest.mark.unit

SPEECH = SpeechSettings(
    openai_api_key="sk-operator",
    openai_base_url="http://127.0.0.1:9/v1",
    deepgram_api_key="dg-operator",
    elevenlabs_api_key="el-operator",
    xai_api_key="xai-operator",
)


@pytest.mark.parametrize(
    ("key", "provider", "expected"),
    [
        ("llm_config", "openai", "sk-operator"),
        ("llm_config", "xai", "xai-operator"),
        ("stt_config", "openai", "sk-operator"),
        ("tts_config", "openai", "sk-operator"),
        ("stt_config", "deepgram", "dg-operator"),
        ("tts_config", "elevenlabs", "el-operator"),
    ],
)
def test_speech_keys_fill_in_missing_api_keys(key: str, provider: str, expected: str) -> None:
    section = _section({key: {"provider": provider}}, key, SPEECH)
    assert section["api_key"] == expected


def test_an_assistant_s_own_key_and_offline_sections_are_left_alone() -> None:
    own = _section({"llm_config": {"provider": "openai", "api_key": "mine"}}, "llm_config", SPEECH)
    assert own["api_key"] == "mine"
    assert "api_key" not in _section({"llm_config": {"provider": "ollama"}}, "llm_config", SPEECH)
    offline = _section({}, "stt_config", SPEECH)  # no key; the host settings are the operator's
    assert offline["provider"] == "offline"
    assert "api_key" not in offline
    assert (offline["device"], offline["compute_type"]) == ("cpu", "int8")
    assert "api_key" not in _section(
        {"tts_config": {"provider": "openai"}}, "tts_config", SpeechSettings()
    )


async def test_the_built_llm_sends_the_operator_key_to_the_operator_base_url() -> None:
    providers = await build_providers(
        config_of(
            {
                "llm_config": {"provider": "openai", "model": "gpt-4o-mini"},
                "stt_config": {"provider": "openai"},
                "tts_config": {"provider": "openai"},
            }
        ),
        SPEECH,
    )
    try:
        llm = providers.llm
        assert llm is not None
        assert llm._headers["Authorization"] == "Bearer sk-operator"  # type: ignore[attr-defined]
        assert llm._url == "http://127.0.0.1:9/v1/chat/completions"  # type: ignore[attr-defined]
    finally:
        await providers.aclose()


@pytest.mark.parametrize(
    ("key", "provider"),
    [
        ("llm_config", "openai"),
        ("llm_config", "xai"),
        ("stt_config", "deepgram"),
        ("tts_config", "elevenlabs"),
    ],
)
def test_where_the_operator_requires_own_keys_its_keys_are_never_used(
    key: str, provider: str
) -> None:
    """The last word ([byok] mode = "required"): a section that would take the operator's key
    is refused, one with a key of its own is built."""
    with pytest.raises(ProviderConfigError, match="requires the organization's own"):
        _section({key: {"provider": provider}}, key, SPEECH, speech_keys=False)
    own = {key: {"provider": provider, "api_key": "org-own"}}
    assert _section(own, key, SPEECH, speech_keys=False)["api_key"] == "org-own"


async def test_a_speech_to_speech_call_takes_neither_operator_key_when_required() -> None:
    realtime: dict[str, Any] = {"provider": "xai_realtime", "llm_config": {"api_key": "org-xai"}}
    speech = SpeechSettings(tts="openai", openai_api_key="sk-operator", xai_api_key="xai-op")
    with pytest.raises(ProviderConfigError, match="tts_config: the operator requires"):
        await build_providers(
            config_of(realtime), speech, speech_keys=False
        )  # the say voice: [speech] tts
    with pytest.raises(ProviderConfigError, match="tts_config: the operator requires"):
        build_tts(config_of(realtime), speech, speech_keys=False)
    with pytest.raises(ProviderConfigError, match="llm_config: the operator requires"):
        await build_providers(config_of({"provider": "xai_realtime"}), speech, speech_keys=False)
    say = {"provider": "openai", "voice": "nova", "api_key": "org-openai"}
    keyed = {"provider": "xai_realtime", "llm_config": {"api_key": "org-xai", "say_voice": say}}
    providers = await build_providers(config_of(keyed), speech, speech_keys=False)
    try:
        assert providers.realtime is not None
        assert providers.realtime._headers["Authorization"] == "Bearer org-xai"  # type: ignore[attr-defined]
        assert providers.tts._headers["Authorization"] == "Bearer org-openai"  # type: ignore[attr-defined]
    finally:
        await providers.aclose()
