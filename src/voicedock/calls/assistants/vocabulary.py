"""The organization's vocabulary in a call's configuration: its keyterms join every
recognizer's ``stt_config.keyterms``, its pronunciations every voice's
``tts_config.pronunciations`` (a speech-to-speech assistant's ``llm_config.say_voice`` too, and
each section's fallback plan), after the assistant's own: the assistant's rule for a word wins.

Applied once, where a call's assistant is resolved (``calls/assistants/resolve.py``), so the
snapshot a call stores says what it heard and said with.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from voicedock.calls.assistants.config import SAY_VOICE
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.tenant_provider_fields import FALLBACK_PLAN
from voicedock.domain.vocabulary import (
    Pronunciation,
    Vocabulary,
    merged_keyterms,
    merged_pronunciations,
)

KEYTERMS = "keyterms"
PRONUNCIATIONS = "pronunciations"


def with_vocabulary(config: JsonObject, vocabulary: Vocabulary | None) -> JsonObject:
    """``config`` (resolved: its sections name their providers) with ``vocabulary`` merged
    into its speech sections; as it is without one."""
    if vocabulary is None or vocabulary.empty:
        return config
    merged = dict(config)
    stt, tts = merged.get("stt_config"), merged.get("tts_config")
    if isinstance(stt, dict):
        merged["stt_config"] = _each(stt, lambda s: _heard(s, vocabulary))
    if isinstance(tts, dict):
        merged["tts_config"] = _each(tts, lambda s: _said(s, vocabulary))
    llm = merged.get("llm_config")
    if isinstance(llm, dict) and isinstance(llm.get(SAY_VOICE), dict):
        say = llm[SAY_VOICE]
        assert isinstance(say, dict)
        merged["llm_config"] = {**llm, SAY_VOICE: _said(say, vocabulary)}
    return merged


def _each(section: JsonObject, merge: Callable[[JsonObject], JsonObject]) -> JsonObject:
    """``merge`` applied to the section and to each entry of its fallback plan."""
    merged = merge(section)
    plan = merged.get(FALLBACK_PLAN)
    if isinstance(plan, list):
        merged[FALLBACK_PLAN] = [merge(e) if isinstance(e, dict) else e for e in plan]
    return merged


def _heard(section: JsonObject, vocabulary: Vocabulary) -> JsonObject:
    if not vocabulary.keyterms:
        return dict(section)
    own = msgspec.convert(section.get(KEYTERMS) or [], list[str])
    terms: list[JsonValue] = list(merged_keyterms(own, vocabulary.keyterms))
    return {**section, KEYTERMS: terms}


def _said(section: JsonObject, vocabulary: Vocabulary) -> JsonObject:
    if not vocabulary.pronunciations:
        return dict(section)
    own = msgspec.convert(section.get(PRONUNCIATIONS) or [], list[Pronunciation])
    rules = merged_pronunciations(own, vocabulary.pronunciations)
    built: list[JsonValue] = msgspec.to_builtins(rules)
    return {**section, PRONUNCIATIONS: built}
