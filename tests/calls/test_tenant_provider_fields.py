"""The one list of what an organization may set per provider
(``domain/tenant_provider_fields.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.calls.assistants.config import resolve_provider, tenant_sections
from voicedock.config import SpeechSettings, load_settings
from voicedock.domain import tenant_provider_fields
from voicedock.errors import BadRequest, ConfigError
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry

pytestmark = pytest.mark.unit


def test_every_engine_voicedock_registers_has_its_list() -> None:
    registries = {
        tenant_provider_fields.STT: stt_registry,
        tenant_provider_fields.TTS: tts_registry,
        tenant_provider_fields.LLM: llm_registry,
    }
    for section, registry in registries.items():
        builtin = {n for n in registry.names() if not n.startswith(("live-", "test", "fake"))}
        assert builtin <= set(tenant_provider_fields.TENANT_KEYS[section]), section


def test_no_host_setting_is_on_any_list() -> None:
    for providers in tenant_provider_fields.TENANT_KEYS.values():
        for name, keys in providers.items():
            host = set(keys) & tenant_provider_fields.OPERATOR_KEYS
            assert host <= ({"sample_rate"} if name == "elevenlabs" else set()), name


def test_a_stored_configuration_keeps_only_what_the_list_allows() -> None:
    stored = {
        "stt_config": {"provider": "offline", "language": "de", "cache_dir": "/", "cpu_threads": 9},
        "tts_config": {"sample_rate": 10**9, "length_scale": 50},
        "llm_config": {"provider": "openai", "model": "m", "api_key": "k", "evil": 1},
    }
    kept = tenant_sections(stored, SpeechSettings())
    assert kept["stt_config"] == {"provider": "offline", "language": "de"}
    assert kept["tts_config"] == {}
    assert kept["llm_config"] == {"provider": "openai", "model": "m", "api_key": "k"}
    resolve_provider(kept, SpeechSettings())  # what is left passes the rules


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"stt_config": {"cache_dir": "/tmp"}}, "stt_config.cache_dir is set by the operator"),
        ({"tts_config": {"provider": "openai", "speed": 40}}, "tts_config.speed must be between"),
        ({"llm_config": {"temperature": float("nan")}}, "llm_config.temperature must be"),
        ({"stt_config": {"provider": "deepgram", "x": 1}}, "not a setting of the deepgram STT"),
    ],
)
def test_resolving_refuses_naming_the_key(config: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        resolve_provider(config, SpeechSettings(llm="openai"))


def test_a_configuration_file_assistant_follows_the_same_list(tmp_path: Path) -> None:
    """Assistants of the file are stored like the API's (their organization manages them
    there): host settings belong in [speech]."""
    path = tmp_path / "voicedock.toml"
    path.write_text(
        '[[assistants]]\nname = "a"\norganization = "acme"\n'
        '[assistants.stt_config]\nprovider = "offline"\ncache_dir = "/var/lib"\n'
    )
    with pytest.raises(ConfigError, match=r"assistants\[0\]\.stt_config\.cache_dir: is set by"):
        load_settings(path, environ={})
    path.write_text('[speech]\nwhisper_cache_dir = "/var/cache/vd"\nwhisper_cpu_threads = 2\n')
    speech = load_settings(path, environ={}).speech
    assert (speech.whisper_cache_dir, speech.whisper_cpu_threads) == ("/var/cache/vd", 2)
    path.write_text('[speech]\nwhisper_device = "tpu"\n')
    with pytest.raises(ConfigError, match=r"speech\.whisper_device"):
        load_settings(path, environ={})


@pytest.mark.parametrize("value", [10**400, float("inf"), float("nan"), True, "2"])
def test_numbers_are_numbers_in_bounds(value: object) -> None:
    with pytest.raises(BadRequest, match=r"stt_config\.beam_size must be"):
        tenant_provider_fields.check_section("stt_config", "offline", {"beam_size": value})
