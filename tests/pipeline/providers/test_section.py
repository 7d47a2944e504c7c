"""How a provider reads its configuration section: the section's JSON decoded into its type,
the same defaults, a value of the wrong JSON kind refused naming its key."""

from __future__ import annotations

import pytest

from voicedock.domain.assistant_config import LlmConfig, SttConfig, TtsConfig
from voicedock.domain.json import JsonValue
from voicedock.pipeline.providers._http import Timeouts
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.pipeline.providers.deepgram import DeepgramStt
from voicedock.pipeline.providers.openai_audio import OpenAiStt
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy
from voicedock.pipeline.providers.section import decoded
from voicedock.pipeline.providers.whisper.stt import WhisperStt

pytestmark = pytest.mark.unit


def test_numbers_and_defaults() -> None:
    section = decoded(TtsConfig, {"sample_rate": 16000, "speed": 2, "provider": "x"}, "tts_config")
    assert (section.sample_rate, section.speed) == (16000, 2.0)
    assert Timeouts.from_config(section) == Timeouts(connect_s=5.0, read_s=15.0, total_s=None)
    assert decoded(TtsConfig, {"unknown": 1}, "tts_config") == TtsConfig()  # never read


def test_null_and_absent_values_differ_where_they_mean_two_things() -> None:
    detect = decoded(SttConfig, {"language": None, "endpointing_ms": None}, "stt_config")
    absent = SttConfig()
    assert WhisperStt(detect)._language is None  # null: detect the language
    assert WhisperStt(absent)._language == "en"
    null_endpointing = DeepgramStt(
        decoded(SttConfig, {"api_key": "k", "endpointing_ms": None}, "stt_config")
    )
    assert "endpointing=" not in null_endpointing.live_url(8000)
    default = DeepgramStt(SttConfig(api_key="k"))
    assert "endpointing=300" in default.live_url(8000)


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, "3"])
def test_a_value_of_another_json_kind_names_its_key(value: JsonValue) -> None:
    with pytest.raises(ProviderConfigError, match=r"^stt_config\.read_timeout_s: Expected"):
        decoded(SttConfig, {"read_timeout_s": value}, "stt_config")


def test_rule_based_facts_must_map_strings_to_strings() -> None:
    with pytest.raises(ProviderConfigError, match=r"llm\.facts\[\.\.\.\]: Expected `str`"):
        decoded(LlmConfig, {"facts": {"hours": 9}}, "llm")
    with pytest.raises(ProviderConfigError, match=r"llm\.greeting must be a non-empty string"):
        RuleBasedPolicy.from_config(LlmConfig(greeting=" "))


def test_a_null_language_reaches_no_cloud_stt_as_the_word_none() -> None:
    """``language: null`` (allowed for every STT: detect) is no language at all for Deepgram and
    OpenAI; the untyped section sent them the text "None"."""
    section = decoded(SttConfig, {"api_key": "k", "language": None}, "stt_config")
    assert "language" not in DeepgramStt(section).live_url(8000)
    form = OpenAiStt(section)._form(b"\0\0", 8000)
    assert "language" not in [options["name"] for options, _, _ in form._fields]
