"""A call opens its organization's referenced provider keys in memory; [byok] mode off or
required refuses what the operator does not allow, for every engine the call reaches."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.world import new_operator_key
from voicedock.calls.assistants.key_refs import KeyRefs, engines, references
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.key_box import key_box, sealing_context
from voicedock.domain.records import Organization, ProviderKey
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.store import open_store
from voicedock.store.base import Store

pytestmark = pytest.mark.unit

SECRET = "sk-org-own-0123456789abcd"
ORG = "org-1"
SPEECH = SpeechSettings()  # the operator's engines: offline
REF = {"llm_config": {"provider": "openai", "api_key_ref": "mine", "model": "gpt-4o-mini"}}


async def _store(tmp_path: Path, byok: ByokSettings) -> Store:
    store = await open_store(f"sqlite:///{tmp_path / 'k.db'}")
    await store.migrate()
    box = key_box(byok)
    assert box is not None
    key = ProviderKey(
        id="k1", organization_id=ORG, name="mine", provider="openai", sealed="", last4="abcd"
    )
    key.sealed = box.seal(SECRET, sealing_context(ORG, key.id))
    async with store.transaction() as tx:
        await tx.insert_organization(Organization(id=ORG, name="org"))
        await tx.insert_provider_key(key)
    return store


async def test_a_reference_is_opened_and_the_given_config_is_unchanged(tmp_path: Path) -> None:
    byok = ByokSettings(key=new_operator_key())
    store = await _store(tmp_path, byok)
    try:
        opened = await KeyRefs(store, ORG, byok, SPEECH).opened(REF)
        assert opened["llm_config"]["api_key"] == SECRET
        assert "api_key_ref" not in opened["llm_config"]
        assert "api_key" not in REF["llm_config"]
        assert references(REF, "mine")
        with pytest.raises(ProviderConfigError, match="no provider key named"):
            await KeyRefs(store, "org-2", byok, SPEECH).opened(REF)
        other = ByokSettings(key=new_operator_key())  # the operator key was changed
        with pytest.raises(ProviderConfigError, match="does not open"):
            await KeyRefs(store, ORG, other, SPEECH).opened(REF)
        with pytest.raises(ProviderConfigError, match="does not allow"):
            await KeyRefs(store, ORG, ByokSettings(mode="off", key=byok.key), SPEECH).opened(REF)
    finally:
        await store.aclose()


async def test_required_mode_never_falls_back_to_the_operators_key(tmp_path: Path) -> None:
    byok = ByokSettings(mode="required", key=new_operator_key())
    store = await _store(tmp_path, byok)
    try:
        bare = {"llm_config": {"provider": "openai"}}
        with pytest.raises(ProviderConfigError, match="requires the organization's own"):
            await KeyRefs(store, ORG, byok, SPEECH).opened(bare)
        offline = {"llm_config": {"provider": "rule-based"}}
        assert await KeyRefs(store, ORG, byok, SPEECH).opened(offline) == offline
        assert (await KeyRefs(store, ORG, byok, SPEECH).opened(REF))["llm_config"][
            "api_key"
        ] == SECRET
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"provider": "xai_realtime"}, "llm_config"),
        ({"provider": "xai_realtime", "llm_config": {"provider": "rule-based"}}, "llm_config"),
        (
            {"provider": "xai_realtime", "llm_config": {"api_key_ref": "mine"}},
            "llm_config.say_voice",
        ),
    ],
)
async def test_required_mode_covers_every_engine_of_a_speech_to_speech_call(
    tmp_path: Path, config: dict[str, object], where: str
) -> None:
    """The realtime session whatever ``llm_config`` names or leaves out, and the operator's
    cloud TTS speaking for an assistant without ``say_voice``: a call placed earlier fails."""
    byok = ByokSettings(mode="required", key=new_operator_key())
    store = await _store(tmp_path, byok)
    try:
        with pytest.raises(ProviderConfigError, match=f"^{where}: the operator requires"):
            await KeyRefs(store, ORG, byok, SpeechSettings(tts="openai")).opened(config)
    finally:
        await store.aclose()


def test_the_engines_a_configuration_reaches() -> None:
    speech = SpeechSettings(stt="deepgram", tts="elevenlabs", llm="openai")
    reached = engines({"tts_config": {"provider": "piper"}}, speech)
    assert [(e.where, e.provider, e.left_out, e.cloud) for e in reached] == [
        ("stt_config", "deepgram", True, True),
        ("tts_config", "piper", False, False),
        ("llm_config", "openai", True, True),
    ]
    realtime = {"provider": "xai_realtime", "llm_config": {"provider": "rule-based"}}
    assert [(e.where, e.provider, e.left_out) for e in engines(realtime, speech)] == [
        ("llm_config", "xai_realtime", False),
        ("llm_config.say_voice", "elevenlabs", True),
    ]
    # An organization's defaults: only what they name (an assistant completes the rest).
    assert [e.where for e in engines(realtime, speech, partial=True)] == ["llm_config"]
    assert engines({"provider": "openai"}, speech, partial=True) == []


async def test_the_pipeline_of_a_speech_to_speech_plan_is_reached_and_its_keys_opened(
    tmp_path: Path,
) -> None:
    speech = SpeechSettings(stt="deepgram", tts="elevenlabs", llm="openai")
    plan = [{"provider": "mistral"}, {"provider": "openai", "api_key_ref": "mine"}]
    realtime: dict[str, object] = {
        "provider": "xai_realtime",
        "llm_config": {"api_key_ref": "mine", "fallback_plan": plan},
    }
    assert [(e.where, e.provider, e.left_out) for e in engines(realtime, speech)] == [
        ("llm_config", "xai_realtime", False),
        ("llm_config.say_voice", "elevenlabs", True),
        ("llm_config.fallback_plan[0]", "mistral", False),
        ("llm_config.fallback_plan[1]", "openai", False),
        ("stt_config", "deepgram", True),  # the operator's STT completes the pipeline
    ]
    voiced = {**realtime, "tts_config": {"provider": "openai", "api_key_ref": "mine"}}
    assert [e.where for e in engines(voiced, speech)][-1] == "tts_config"
    byok = ByokSettings(key=new_operator_key())
    store = await _store(tmp_path, byok)
    try:
        opened = await KeyRefs(store, ORG, byok, speech).opened(voiced)
        llm = opened["llm_config"]
        assert isinstance(llm, dict)
        assert llm["api_key"] == SECRET
        assert llm["fallback_plan"] == [plan[0], {"provider": "openai", "api_key": SECRET}]
        assert opened["tts_config"] == {"provider": "openai", "api_key": SECRET}
        # Where the operator requires them, the pipeline's cloud engines need them too.
        required = ByokSettings(mode="required", key=byok.key)
        local_voice = SpeechSettings(stt="deepgram", tts="piper", llm="openai")
        with pytest.raises(ProviderConfigError, match=r"^llm_config\.fallback_plan\[0\]: "):
            await KeyRefs(store, ORG, required, local_voice).opened(voiced)
    finally:
        await store.aclose()
