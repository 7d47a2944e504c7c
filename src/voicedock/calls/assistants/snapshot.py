"""A call's configuration when the call is answered: the snapshot resolved when the call was
placed (``calls/assistants/resolve.py``), checked again, never resolved again.

The provider rules, the cut of each provider section to what an organization may set and the
checks of its keys ran once, when the call was placed (an outbound or scheduled call, a
campaign's, a squad's members) or when an inbound call chose its assistant; the call stores
that typed value and hands it down to its providers. Two things may have changed since, and are
checked on the typed value, not parsed again (``checked_at_answer``): the operator's egress
policy (a scheduled call dialled after the policy changed, an inbound call resolved without
it), the voices this node speaks (``GET /voices``: the operator's list, read at start-up), and
the list of what an organization may set (``domain/tenant_provider_fields.py``: a snapshot
stored by an earlier release, whose list was longer).
"""

from __future__ import annotations

import msgspec

from voicedock.calls.assistants.config import SAY_VOICE, check_tts_voice, tenant_sections
from voicedock.calls.assistants.providers import SPEECH_TO_SPEECH
from voicedock.calls.assistants.urls import check_tenant_urls
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import AssistantConfig, set_or
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.tenant_provider_fields import FALLBACK_PLAN
from voicedock.egress import EgressPolicy

# The provider sections of a configuration, in the order a call's engines are made.
SECTIONS = ("stt_config", "llm_config", "tts_config")


def provider_sections(config: AssistantConfig) -> JsonObject:
    """The provider and the provider sections ``config`` holds, each as it is held (a section
    is typed by its provider's type where its provider is made:
    ``pipeline/providers/section.py``); a configuration without ``provider`` is the offline
    pipeline's. Each section is a copy: what is added to it to make a provider (the
    operator's key) never reaches the call's snapshot."""
    held: JsonObject = {"provider": set_or(config.provider, "offline")}
    for key in SECTIONS:
        section = json_object(set_or(getattr(config, key), None))
        if section is not None:
            held[key] = dict(section)
    return held


def checked_at_answer(
    config: AssistantConfig, speech: SpeechSettings, policy: EgressPolicy | None
) -> AssistantConfig:
    """``config``, a call's snapshot, as it may run now: each provider section cut to what an
    organization may set (what a snapshot of an earlier release holds beyond it is dropped,
    ``tenant_sections``), and with ``policy`` its URLs (sections, fallback plans, tools)
    checked against the egress policy in force, each voice one this node speaks
    (``BadRequest`` naming the key). The provider rules are not applied again: the snapshot was
    resolved when it was placed."""
    held = provider_sections(config)
    cut = tenant_sections(held, speech)
    for where, section in _voices(cut):
        check_tts_voice(str(section.get("provider", speech.tts)), section, where, speech)
    if policy is not None:
        tools: list[JsonValue] = []
        for tool in set_or(config.tools, []):
            checked = json_object(tool)  # each a JSON object, as calls/tools/config.py let it
            if checked is not None:
                tools.append(checked)
        check_tenant_urls({**cut, "tools": tools}, policy)
    changed = {key: cut[key] for key in SECTIONS if key in cut and cut[key] != held[key]}
    return msgspec.structs.replace(config, **changed) if changed else config


def _voices(held: JsonObject) -> list[tuple[str, JsonObject]]:
    """The TTS sections of ``held`` with where each is written: ``tts_config`` and its fallback
    plan's entries, a speech-to-speech session's ``say_voice``."""
    found: list[tuple[str, JsonObject]] = []
    llm = json_object(held.get("llm_config"))
    if held.get("provider") in SPEECH_TO_SPEECH and llm is not None:
        say = json_object(llm.get(SAY_VOICE))
        if say is not None:
            found.append((f"llm_config.{SAY_VOICE}", say))
    tts = json_object(held.get("tts_config"))
    if tts is not None:
        found.append(("tts_config", tts))
        plan = tts.get(FALLBACK_PLAN)
        for index, entry in enumerate(plan if isinstance(plan, list) else []):
            if (checked := json_object(entry)) is not None:
                found.append((f"tts_config.{FALLBACK_PLAN}[{index}]", checked))
    return found
