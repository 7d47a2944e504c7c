"""A call's dialogue settings from its assistant configuration; the provider rules."""

from __future__ import annotations

import pytest

from voicedock.calls.assistants.config import resolve_provider
from voicedock.calls.live.config import conversation_config
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import config_of
from voicedock.errors import BadRequest
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.frames import ChatMessage

pytestmark = pytest.mark.unit

DEFAULT = ConversationConfig().system_prompt


def messages(*pairs: tuple[str, str]) -> dict[str, object]:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


def test_system_messages_are_the_prompt_and_other_messages_earlier_turns() -> None:
    llm = messages(
        ("system", "You are Ada."),
        ("user", "Hi, it's Jan again."),
        ("system", "Be brief."),
        ("assistant", "Hello Jan."),
    )
    cfg = conversation_config(config_of({"llm_config": llm}), 8000)
    assert cfg.system_prompt == "You are Ada.\n\nBe brief."
    assert cfg.history == (
        ChatMessage("user", "Hi, it's Jan again."),
        ChatMessage("assistant", "Hello Jan."),
    )


def test_system_prompt_comes_first_then_messages_then_facts() -> None:
    config = {
        "system_prompt": "You are Ada.",
        "llm_config": messages(("system", "The caller is Jan.")),
        "facts": {"hours": "nine to five"},
    }
    cfg = conversation_config(config_of(config), 8000)
    assert (
        cfg.system_prompt == "You are Ada.\n\nThe caller is Jan.\n\nFacts:\n- hours: nine to five"
    )


def test_without_instructions_the_default_prompt() -> None:
    assert conversation_config(config_of({}), 8000).system_prompt == DEFAULT
    assert conversation_config(config_of({"llm_config": messages()}), 8000).system_prompt == DEFAULT
    only_turns = conversation_config(config_of({"llm_config": messages(("user", "Hi"))}), 8000)
    assert only_turns.system_prompt == DEFAULT
    assert only_turns.history == (ChatMessage("user", "Hi"),)


SPEECH = SpeechSettings()


def test_openai_chooses_the_llm_and_sections_inherit() -> None:
    config = {"provider": "openai", "stt_config": {}, "tts_config": {"provider": "openai"}}
    resolved = resolve_provider(config, SPEECH)
    assert resolved["llm_config"] == {"provider": "openai", "model": "gpt-4o-mini"}
    assert resolved["stt_config"] == {"provider": SPEECH.stt}  # the operator's engine
    assert resolved["tts_config"] == {"provider": "openai"}
    own = resolve_provider(dict(config, llm_config={"model": "gpt-4o", "temperature": 0.2}), SPEECH)
    assert own["llm_config"] == {"provider": "openai", "model": "gpt-4o", "temperature": 0.2}
    assert resolve_provider(resolved, SPEECH) == resolved  # idempotent


def test_mistral_gets_its_default_model() -> None:
    config = {"provider": "mistral", "stt_config": {}, "tts_config": {}}
    llm = resolve_provider(config, SPEECH)["llm_config"]
    assert llm == {"provider": "mistral", "model": "mistral-small-latest"}


def test_offline_keeps_sections_choosing_their_own_llm() -> None:
    resolved = resolve_provider({"llm_config": {"provider": "ollama", "model": "llama3"}}, SPEECH)
    assert resolved["provider"] == "offline"
    assert resolved["llm_config"] == {"provider": "ollama", "model": "llama3"}
    assert resolve_provider({}, SPEECH)["llm_config"] == {"provider": SPEECH.llm}


@pytest.mark.parametrize(
    "config",
    [
        {"provider": "openai", "stt_config": {}, "tts_config": {}, "llm_config": {"provider": "x"}},
        {"provider": "mistral", "stt_config": {}, "tts_config": {}, "llm_config": {"provider": 1}},
        {"tts_config": {"provider": "say-it"}},
        {"llm_config": {"provider": ""}},
    ],
)
def test_unknown_or_contradicting_providers_are_400(config: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        resolve_provider(config, SPEECH)
