"""The provider sections of an assistant's configuration (``stt_config``, ``tts_config``,
``llm_config``) as JSON Schemas made from the keys each provider takes
(domain/tenant_provider_fields.py: each key's rule carries its schema), the rules tying
``llm_config`` to ``provider``, and the sections each ``provider`` requires or refuses
(``if``/``then``), as far as the body sent shows them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from voicedock.api.models.operations import Schema
from voicedock.calls.assistants.config import CONFIG_TEXT_MAX, LLM_FILLER, MESSAGE_ROLES
from voicedock.calls.assistants.providers import NEEDS_STT_AND_TTS, PROVIDERS, SPEECH_TO_SPEECH
from voicedock.domain import tenant_provider_fields
from voicedock.domain.secret_fields import MASK
from voicedock.validation import NOT_BLANK_PATTERN


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(props: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """A closed object: no other key than ``props``."""
    schema: Schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


_LONG_TEXT: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": CONFIG_TEXT_MAX,
    "pattern": NOT_BLANK_PATTERN,
}
_MESSAGE = obj({"role": {"enum": list(MESSAGE_ROLES)}, "content": _LONG_TEXT}, ("role", "content"))
_SECRET: Schema = {
    "type": "string",
    "description": "The organization's own provider key. Write-only: every read shows "
    f"{MASK} and its last 4 characters; sending that masked value back keeps the stored key "
    "(a masked value matching no stored key is a 400).",
}


def _keys(rules: Mapping[str, tenant_provider_fields.Rule], extra: dict[str, Schema]) -> Schema:
    props = {key: rule.schema for key, rule in rules.items()}
    props.update({key: schema for key, schema in extra.items() if key in props})
    if "api_key" in props:
        props["api_key"] = {**props["api_key"], **_SECRET}
    return props


def _variants(kind: str, extra: dict[str, Schema]) -> list[Schema]:
    """A section naming a provider this list knows: its keys, each value bounded."""
    return [
        obj({**_keys(rules, extra), "provider": {"const": name}}, ("provider",))
        for name, rules in tenant_provider_fields.TENANT_KEYS[kind].items()
    ]


def _unnamed(kind: str, *, provider: bool, extra: dict[str, Schema] | None = None) -> Schema:
    """A section naming no provider (``provider`` False), or one this list does not know (an
    operator's plugin engine): the keys some provider takes, each within its bounds (a key
    means one thing whichever provider takes it), checked against the engine's own list once
    the node's engine is known (400 then)."""
    rules = tenant_provider_fields.any_provider_keys(kind)
    schema: Schema = {
        "type": "object",
        "propertyNames": {"enum": sorted(rules)},
        "properties": {**_keys(rules, extra or {}), **(extra or {})},
    }
    if provider:
        known = sorted(tenant_provider_fields.TENANT_KEYS[kind])
        name = tenant_provider_fields.PROVIDER_NAME.schema  # what any provider name must be
        schema["properties"]["provider"] = {**name, "not": {"enum": known}}
    else:
        schema["not"] = {"required": ["provider"]}
    return schema


def _with_plan(
    kind: str, extra: dict[str, Schema], rule: tenant_provider_fields.Rule | None = None
) -> dict[str, Schema]:
    """``extra`` and the section's ``fallback_plan`` (described by ``rule``, the section's
    own by default): sections of the kind ``kind``, each naming its provider (one this list
    knows, or an operator's plugin engine), with no plan."""
    plan = tenant_provider_fields.FALLBACK_PLAN
    entries: list[Schema] = []
    for name, rules in tenant_provider_fields.TENANT_KEYS[kind].items():
        keys = {k: v for k, v in _keys(rules, extra).items() if k != plan}
        entries.append(obj({**keys, "provider": {"const": name}}, ("provider",)))
    plugin = _unnamed(kind, provider=True, extra=extra)
    plugin["propertyNames"] = {"enum": [k for k in plugin["propertyNames"]["enum"] if k != plan]}
    entries.append(plugin | {"required": ["provider"]})
    rule = rule or tenant_provider_fields.TENANT_KEYS[kind]["offline"][plan]
    return {**extra, plan: {**rule.schema, "items": {"anyOf": entries}}}


def _section(kind: str) -> Schema:
    """A provider section (domain/tenant_provider_fields.py): the keys each provider takes."""
    providers = tenant_provider_fields.TENANT_KEYS[kind]
    listed = "; ".join(f"{name}: {', '.join(sorted(keys))}" for name, keys in providers.items())
    host = ", ".join(sorted(tenant_provider_fields.OPERATOR_KEYS))
    extra = _with_plan(kind, {})
    return {
        "anyOf": [
            *_variants(kind, extra),
            _unnamed(kind, provider=False, extra=extra),
            _unnamed(kind, provider=True, extra=extra),
        ],
        "description": (
            f"What an organization may set, per provider ({listed}); every value is bounded. "
            f"Host settings ({host}) are the operator's [speech] settings: naming one, or any "
            "other key, is a 400 naming it (e.g. stt_config.cache_dir is set by the operator, "
            "not per assistant). A section naming no provider is checked against the node's "
            "default engine: 400 Unresolvable configuration when that one does not take a "
            "key, as for a URL the operator's egress policy refuses."
        ),
    }


(SPEECH_TO_SPEECH_PROVIDER,) = SPEECH_TO_SPEECH
_LLM_EXTRA: dict[str, Schema] = {"messages": nullable({"type": "array", "items": _MESSAGE})}
# llm_config: a pipeline assistant's LLM, or (provider xai_realtime) the realtime session's.
_LLM_PLANNED = _with_plan(tenant_provider_fields.LLM, _LLM_EXTRA)
_LLM_SECTIONS: Schema = {
    "anyOf": [
        *_variants(tenant_provider_fields.LLM, _LLM_PLANNED),
        _unnamed(tenant_provider_fields.LLM, provider=False, extra=_LLM_PLANNED),
        _unnamed(tenant_provider_fields.LLM, provider=True, extra=_LLM_PLANNED),
    ]
}
_REALTIME_KEYS = tenant_provider_fields.TENANT_KEYS[tenant_provider_fields.REALTIME][
    SPEECH_TO_SPEECH_PROVIDER
]
# A speech-to-speech session's fallback_plan: the LLM sections of the pipeline that takes over.
_REALTIME_EXTRA = _with_plan(
    tenant_provider_fields.LLM, _LLM_EXTRA, _REALTIME_KEYS[tenant_provider_fields.FALLBACK_PLAN]
)
_REALTIME_SECTION: Schema = obj(_keys(_REALTIME_KEYS, _REALTIME_EXTRA))
_REALTIME_PARTIAL: Schema = _unnamed(
    tenant_provider_fields.REALTIME, provider=False, extra=_REALTIME_EXTRA
)


def _llm_rule(provider: Schema, llm: Schema) -> Schema:
    return {"properties": {"provider": provider, "llm_config": nullable(llm)}}


# Which llm_config a configuration takes follows its provider (calls/assistants/config.py
# _check_llm_keys): xai_realtime's is the realtime session's; another provider's an LLM's;
# with none yet (an override), either, a realtime one naming no provider.
_PROVIDER_RULES: Schema = {
    "anyOf": [
        _llm_rule({"const": SPEECH_TO_SPEECH_PROVIDER}, ref("RealtimeConfig"))
        | {"required": ["provider"]},
        _llm_rule(
            {"enum": [p for p in PROVIDERS if p != SPEECH_TO_SPEECH_PROVIDER]}, ref("LlmConfig")
        )
        | {"required": ["provider"]},
        {
            "properties": {
                "provider": {"type": "null"},
                "llm_config": nullable({"anyOf": [ref("LlmConfig"), _REALTIME_PARTIAL]}),
            }
        },
        {
            "not": {"required": ["provider"]},
            "properties": {
                "llm_config": nullable({"anyOf": [ref("LlmConfig"), _REALTIME_PARTIAL]})
            },
        },
    ]
}

# How a configuration in a body meets what it completes (calls/assistants/config.py
# resolve_provider checks the result): "whole" holds every setting (a transient assistant, a new
# one as sent); "patch" replaces the stored settings it names, null removing one (PATCH
# /assistants); "override" is deep-merged onto a saved assistant, null leaving the saved value
# (hybrid mode). What the result holds beyond the body only the server sees: 400 naming the key.
Merge = Literal["whole", "patch", "override"]
_SPEECH_SECTIONS = ("stt_config", "tts_config")
_NULL: Schema = {"type": "null"}


def _when(provider: Schema, then: Schema) -> Schema:
    return {"if": {"properties": {"provider": provider}, "required": ["provider"]}, "then": then}


def section_rules(merge: Merge) -> Schema:
    """The sections a ``provider`` requires or refuses (the API documentation's provider
    rules), as ``if``/``then`` over the body: speech-to-speech providers take no LLM filler,
    and no ``stt_config``/``tts_config`` (null: none) but to complete the pipeline of their
    ``llm_config.fallback_plan`` (in a whole configuration the body names it; a patch's
    ``llm_config`` replaces the stored one; an override's is merged onto the saved one, which
    only the server sees); ``openai``/``mistral`` need both sections (in a whole
    configuration; a patch may not remove them) and an ``llm_config`` naming no other
    provider."""
    plan = tenant_provider_fields.FALLBACK_PLAN
    with_plan: Schema = {"type": "object", "required": [plan]}
    realtime: Schema = {"properties": {}}
    speech: list[Schema] = [{"properties": {key: _NULL for key in _SPEECH_SECTIONS}}]
    if merge == "whole":
        speech.append({"required": ["llm_config"], "properties": {"llm_config": with_plan}})
    elif merge == "patch":
        speech += [
            {"not": {"required": ["llm_config"]}},
            {"properties": {"llm_config": with_plan}},
        ]
    if merge != "override":
        realtime["anyOf"] = speech
    no_filler: Schema = {"properties": {"delay_seconds": _NULL}}
    if merge == "override":  # merged onto the saved filler: a delay given must be null
        realtime["properties"][LLM_FILLER] = no_filler
    else:  # replaces the filler: none, or one whose delay is null (no filler)
        realtime["properties"][LLM_FILLER] = nullable(no_filler | {"required": ["delay_seconds"]})
    rules = [_when({"enum": sorted(SPEECH_TO_SPEECH)}, realtime)]
    pipeline: Schema = {"properties": {key: {"type": "object"} for key in _SPEECH_SECTIONS}}
    if merge == "whole":
        pipeline["required"] = list(_SPEECH_SECTIONS)
    if merge != "override":  # an override's null leaves the saved section
        rules.append(_when({"enum": sorted(NEEDS_STT_AND_TTS)}, pipeline))
    for name in sorted(NEEDS_STT_AND_TTS):
        llm = {"properties": {"provider": {"const": name}}}
        rules.append(_when({"const": name}, {"properties": {"llm_config": llm}}))
    return {"allOf": rules}


SCHEMAS: dict[str, Schema] = {
    "SttConfig": _section(tenant_provider_fields.STT),
    "TtsConfig": _section(tenant_provider_fields.TTS),
    "LlmConfig": _LLM_SECTIONS,
    "RealtimeConfig": _REALTIME_SECTION,
}
PROVIDER_RULES = _PROVIDER_RULES
PATHS: dict[str, Schema] = {}
MODELS = ()
