"""The operator's default fallback plans (``[speech.fallback_plans]``) as a call's providers
are built: taken by an engine whose assistant gives it no plan, replaced by an assistant's own,
never trying the section's own endpoint twice, its keys the operator's (left out where the
operator requires organizations' own), a rule-based entry after the first closing politely. A
speech-to-speech assistant without a plan of its own goes on with the pipeline the defaults
make."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from voicedock.calls.live.providers import SpeechProviders, build_providers
from voicedock.config import FallbackPlansSettings, SpeechSettings
from voicedock.domain.assistant_config import config_of
from voicedock.pipeline.fallback_plans.llm import LlmPlan
from voicedock.pipeline.fallback_plans.plan import Plan
from voicedock.pipeline.fallback_plans.stt import SttPlan
from voicedock.pipeline.fallback_plans.tts import TtsPlan
from voicedock.pipeline.providers.rule_based import PoliteClose

pytestmark = pytest.mark.unit

OWN_LLM = {"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2}


def speech(**plans: list[dict[str, Any]]) -> SpeechSettings:
    return SpeechSettings(
        llm="openai",
        openai_api_key="sk-operator",
        fallback_plans=msgspec.convert(plans, FallbackPlansSettings),
    )


def labels(plan: object) -> list[str]:
    assert isinstance(plan, Plan)
    return [entry.endpoint.label() for entry in plan.entries]


async def built(config: dict[str, Any], settings: SpeechSettings, **kw: Any) -> SpeechProviders:
    providers = await build_providers(config_of(config), settings, **kw)
    await providers.aclose()  # nothing was opened: the objects are what is checked
    return providers


async def test_an_engine_without_a_plan_takes_the_operators_default() -> None:
    settings = speech(
        llm=[{"provider": "ollama", "model": "llama3.2"}, {"provider": "rule_based"}],
        stt=[{"provider": "offline"}],
    )
    # Its own sections (a model, a temperature; a cloud STT with its key), but no plan.
    stt = {"provider": "deepgram", "api_key": "dg-org"}
    providers = await built({"llm_config": OWN_LLM, "stt_config": stt}, settings)
    assert isinstance(providers.llm, LlmPlan)
    assert labels(providers.llm) == [
        "openai/api.openai.com/gpt-4o-mini",
        "ollama/llama3.2",
        "rule_based",
    ]
    assert isinstance(providers.llm.entries[-1].provider, PoliteClose)
    assert isinstance(providers.stt, SttPlan)
    assert labels(providers.stt) == ["deepgram", "offline"]
    assert providers.endpoints is not None
    assert providers.endpoints.llm is not None
    assert providers.endpoints.llm.label() == "openai/api.openai.com/gpt-4o-mini"


async def test_the_operators_engine_takes_it_too() -> None:
    settings = speech(llm=[{"provider": "rule_based", "closing": "Sorry, goodbye."}])
    providers = await built({}, settings)  # no llm_config: [speech] llm
    assert labels(providers.llm) == ["openai/api.openai.com/gpt-4o-mini", "rule_based"]


async def test_an_assistants_own_plan_replaces_the_default() -> None:
    settings = speech(llm=[{"provider": "ollama", "model": "llama3.2"}])
    own = {**OWN_LLM, "fallback_plan": [{"provider": "mistral", "api_key": "sk-org-mistral"}]}
    providers = await built({"llm_config": own}, settings)
    assert labels(providers.llm) == [
        "openai/api.openai.com/gpt-4o-mini",
        "mistral/api.mistral.ai/mistral-small-latest",
    ]


async def test_the_sections_own_endpoint_is_not_tried_twice() -> None:
    settings = speech(
        llm=[{"provider": "openai", "model": "gpt-4o-mini"}, {"provider": "rule_based"}]
    )
    providers = await built({"llm_config": OWN_LLM}, settings)
    assert labels(providers.llm) == ["openai/api.openai.com/gpt-4o-mini", "rule_based"]


async def test_where_organizations_keys_are_required_the_operators_keyed_entries_are_left_out() -> (
    None
):
    settings = speech(
        llm=[
            {"provider": "openai", "model": "gpt-4o"},  # would take [speech] openai_api_key
            {
                "provider": "openai-compatible",
                "base_url": "https://backup.example.com/v1",
                "api_key": "sk-operator-backup",
                "model": "backup",
            },
            {"provider": "rule_based"},
        ]
    )
    own = {
        "provider": "openai-compatible",
        "base_url": "https://llm.example.com/v1",
        "api_key": "sk-org",
        "model": "theirs",
    }
    providers = await built({"llm_config": own}, settings, speech_keys=False)
    assert labels(providers.llm) == ["openai-compatible/llm.example.com/theirs", "rule_based"]


async def test_without_a_default_an_engine_is_its_section_alone() -> None:
    providers = await built({"llm_config": OWN_LLM}, speech())
    assert not isinstance(providers.llm, Plan)


REALTIME = {"provider": "xai_realtime", "llm_config": {"api_key": "xai-org"}}


async def test_a_speech_to_speech_session_without_a_plan_goes_on_with_the_defaults() -> None:
    settings = speech(
        llm=[{"provider": "ollama", "model": "llama3.2"}, {"provider": "rule_based"}],
        stt=[{"provider": "offline"}],
        tts=[{"provider": "openai", "voice": "nova"}],
    )
    settings.stt = "deepgram"
    settings.deepgram_api_key = "dg-operator"
    providers = await built(REALTIME, settings)
    pipeline = providers.pipeline
    assert pipeline is not None
    assert labels(pipeline.llm) == ["ollama/llama3.2", "rule_based"]
    assert isinstance(pipeline.llm, LlmPlan)
    assert isinstance(pipeline.llm.entries[-1].provider, PoliteClose)
    assert pipeline.to.label() == "ollama/llama3.2"
    assert isinstance(pipeline.stt, SttPlan)
    assert labels(pipeline.stt) == ["deepgram", "offline"]  # the operator's STT, then its plan
    assert isinstance(pipeline.tts, TtsPlan)  # the say voice (here [speech] tts), then its plan
    assert labels(pipeline.tts) == ["piper", "openai/api.openai.com"]


async def test_a_speech_to_speech_session_without_any_plan_has_no_pipeline() -> None:
    providers = await built(REALTIME, speech(stt=[{"provider": "offline"}]))
    assert providers.pipeline is None


async def test_a_rule_based_default_first_closes_a_failed_session_politely() -> None:
    providers = await built(REALTIME, speech(llm=[{"provider": "rule_based"}]))
    assert providers.pipeline is not None
    assert isinstance(providers.pipeline.llm, PoliteClose)


async def test_an_assistants_own_pipeline_takes_the_default_stt_and_tts_plans() -> None:
    settings = speech(
        llm=[{"provider": "ollama", "model": "llama3.2"}],
        stt=[{"provider": "offline"}],
        tts=[{"provider": "piper"}],
    )
    own = [{"provider": "mistral", "api_key": "sk-org-mistral"}]
    voice = {"provider": "openai", "voice": "nova", "api_key": "sk-org"}
    config = {
        "provider": "xai_realtime",
        "llm_config": {"api_key": "xai-org", "say_voice": voice, "fallback_plan": own},
    }
    providers = await built(config, settings)
    pipeline = providers.pipeline
    assert pipeline is not None
    assert not isinstance(pipeline.llm, Plan)  # its own plan replaces the default LLM plan
    assert pipeline.to.label() == "mistral/api.mistral.ai/mistral-small-latest"
    assert labels(pipeline.stt) == ["faster_whisper", "offline"]
    assert labels(pipeline.tts) == ["openai/api.openai.com", "piper"]


async def test_where_keys_are_required_a_default_pipeline_needing_the_operators_is_left_out() -> (
    None
):
    settings = speech(llm=[{"provider": "ollama", "model": "llama3.2"}])
    settings.stt = "deepgram"
    settings.deepgram_api_key = "dg-operator"
    providers = await built(REALTIME, settings, speech_keys=False)
    assert providers.realtime is not None  # the session itself is the organization's
    assert providers.pipeline is None  # the operator's STT would take its key
    settings.fallback_plans = msgspec.convert(
        {"llm": [{"provider": "ollama", "model": "llama3.2"}], "stt": [{"provider": "offline"}]},
        FallbackPlansSettings,
    )
    providers = await built(REALTIME, settings, speech_keys=False)
    assert providers.pipeline is not None
    assert not isinstance(providers.pipeline.stt, Plan)  # the keyless default STT alone
