"""The OpenAPI description of the routes whose models are not written yet (hand-written)."""

from __future__ import annotations

from collections.abc import Mapping

from voicedock.api.models.tools import TOOL_ITEM
from voicedock.api.openapi_schema import (
    PATH_ID,
    TIME,
    Schema,
    nullable,
    obj,
    operation,
    ref,
    text,
)
from voicedock.calls.assistant_config import (
    ANALYSIS_TEXT_MAX,
    CONFIG_TEXT_MAX,
    DEFAULT_LLM_FILLER_DELAY_S,
    DEFAULT_LLM_FILLER_MESSAGES,
    LIMIT_FIELDS,
    LLM_FILLER_DELAY,
    LLM_FILLER_MESSAGES,
    MESSAGE_ROLES,
    PROFILE_TEXT_MAX,
    PROVIDERS,
    SPEECH_TO_SPEECH,
    TOOL_FILLER_MESSAGE_MAX,
    VOICEMAIL_DETECTION,
)
from voicedock.calls.tool_config import MAX_TOOLS
from voicedock.domain import provider_keys
from voicedock.domain.audio import CALL_MEDIA_FORMATS
from voicedock.domain.secret_fields import MASK
from voicedock.domain.tenant_schemas import MAX_DEPTH, MAX_SCHEMA_BYTES
from voicedock.validation import WHITESPACE

_LONG_TEXT = text(CONFIG_TEXT_MAX)
_MESSAGE = obj({"role": {"enum": list(MESSAGE_ROLES)}, "content": _LONG_TEXT}, ("role", "content"))
_SECRET: Schema = {
    "type": "string",
    "description": "The organization's own provider key. Write-only: every read shows "
    f"{MASK} and its last 4 characters; sending that masked value back keeps the stored key "
    "(a masked value matching no stored key is a 400).",
}


def _keys(rules: Mapping[str, provider_keys.Rule], extra: dict[str, Schema]) -> Schema:
    props = {key: rule.schema for key, rule in rules.items()}
    props.update({key: schema for key, schema in extra.items() if key in props})
    if "api_key" in props:
        props["api_key"] = {**props["api_key"], **_SECRET}
    return props


def _variants(kind: str, extra: dict[str, Schema]) -> list[Schema]:
    """A section naming a provider this list knows: its keys, each value bounded."""
    return [
        obj({**_keys(rules, extra), "provider": {"const": name}}, ("provider",))
        for name, rules in provider_keys.TENANT_KEYS[kind].items()
    ]


def _unnamed(kind: str, *, provider: bool, extra: dict[str, Schema] | None = None) -> Schema:
    """A section naming no provider (``provider`` False), or one this list does not know (an
    operator's plugin engine): the keys some provider takes, checked once the node's engine
    is known (422 then)."""
    keys = sorted(provider_keys.tenant_keys_of_any(kind))
    schema: Schema = {
        "type": "object",
        "propertyNames": {"enum": keys},
        "properties": dict(extra or {}),
    }
    if provider:
        known = sorted(provider_keys.TENANT_KEYS[kind])
        name = provider_keys.PROVIDER_NAME.schema  # what any provider name must be
        schema["properties"]["provider"] = {**name, "not": {"enum": known}}
    else:
        schema["not"] = {"required": ["provider"]}
    return schema


def _section(kind: str) -> Schema:
    """A provider section (domain/provider_keys.py): the keys each provider takes."""
    providers = provider_keys.TENANT_KEYS[kind]
    listed = "; ".join(f"{name}: {', '.join(sorted(keys))}" for name, keys in providers.items())
    host = ", ".join(sorted(provider_keys.OPERATOR_KEYS))
    return {
        "anyOf": [
            *_variants(kind, {}),
            _unnamed(kind, provider=False),
            _unnamed(kind, provider=True),
        ],
        "description": (
            f"What an organization may set, per provider ({listed}); every value is bounded. "
            f"Host settings ({host}) are the operator's [speech] settings: naming one, or any "
            "other key, is a 400 naming it (e.g. stt_config.cache_dir is set by the operator, "
            "not per assistant). A section naming no provider is checked against the node's "
            "default engine: 422 Unresolvable configuration when that one does not take a "
            "key, as for a URL the operator's egress policy refuses."
        ),
    }


(SPEECH_TO_SPEECH_PROVIDER,) = SPEECH_TO_SPEECH
_LLM_EXTRA: dict[str, Schema] = {"messages": nullable({"type": "array", "items": _MESSAGE})}
# llm_config: a pipeline assistant's LLM, or (provider xai_realtime) the realtime session's.
_LLM_SECTIONS: Schema = {
    "anyOf": [
        *_variants(provider_keys.LLM, _LLM_EXTRA),
        _unnamed(provider_keys.LLM, provider=False, extra=_LLM_EXTRA),
        _unnamed(provider_keys.LLM, provider=True, extra=_LLM_EXTRA),
    ]
}
_REALTIME_SECTION: Schema = obj(
    _keys(provider_keys.TENANT_KEYS[provider_keys.REALTIME][SPEECH_TO_SPEECH_PROVIDER], _LLM_EXTRA)
)
_REALTIME_PARTIAL: Schema = _unnamed(provider_keys.REALTIME, provider=False, extra=_LLM_EXTRA)


def _llm_rule(provider: Schema, llm: Schema) -> Schema:
    return {"properties": {"provider": provider, "llm_config": nullable(llm)}}


# Which llm_config a configuration takes follows its provider (calls/assistant_config.py
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


_CONFIG_PROPS: dict[str, Schema] = {
    "name": text(PROFILE_TEXT_MAX),
    "business_name": text(PROFILE_TEXT_MAX),
    "provider": {"enum": list(PROVIDERS)},
    "first_message": _LONG_TEXT,
    "system_prompt": _LONG_TEXT,
    "llm_config": {
        "type": "object",
        "description": "The LLM's section (per provider, as stt_config), or with provider "
        "xai_realtime the realtime session's (url: the websocket; say_voice: the TTS of say "
        "commands).",
    },
    "stt_config": ref("SttConfig"),
    "tts_config": ref("TtsConfig"),
    "facts": {"type": "object", "additionalProperties": {"type": "string"}},
    **{
        key: {"type": ["integer", "null"], "minimum": low, "maximum": high}
        for key, (low, high) in LIMIT_FIELDS.items()
    },
    "media_format": {
        "enum": list(CALL_MEDIA_FORMATS),
        "description": "Call audio between the PBX and voicedock; default: the trunk's codec.",
    },
    "tools": {
        "type": "array",
        "maxItems": MAX_TOOLS,
        "description": (
            "Functions the model may call: webhook tools (answered by the organization's "
            "server through the tool-calls webhook) and the built-ins end_call, "
            "transfer_call (destinations, mode, message) and send_dtmf. docs/tools.md."
        ),
        "items": TOOL_ITEM,
    },
    "tool_filler": obj(
        {
            "message": {
                "type": ["string", "null"],
                "maxLength": TOOL_FILLER_MESSAGE_MAX,
                "description": "Said while a tool runs longer than delay_seconds; empty: "
                "nothing is said.",
            },
            "delay_seconds": {"type": ["number", "null"], "minimum": 0, "maximum": 10},
        }
    ),
    "llm_filler": obj(
        {
            "delay_seconds": {
                "type": ["number", "null"],
                "minimum": LLM_FILLER_DELAY[0],
                "maximum": LLM_FILLER_DELAY[1],
                "default": DEFAULT_LLM_FILLER_DELAY_S,
                "description": "Seconds after the caller's turn ended without the reply's "
                "first sentence before the filler is said; null: no filler.",
            },
            "messages": {
                "type": ["array", "null"],
                "minItems": 1,
                "maxItems": LLM_FILLER_MESSAGES[0],
                "items": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": LLM_FILLER_MESSAGES[1],
                    "pattern": f"[^{WHITESPACE}]",  # not blank
                },
                "default": list(DEFAULT_LLM_FILLER_MESSAGES),
                "description": "The phrases, one per slow turn, taken in turn.",
            },
        }
    )
    | {
        "description": (
            "A slow LLM: the caller hears a short phrase, then the reply (pipeline "
            "assistants; not with xai_realtime). In the transcript as an assistant message "
            "of its own, never in the model's context. docs/speech.md."
        )
    },
    "analysis_plan": obj(
        {
            "summary_prompt": nullable(text(ANALYSIS_TEXT_MAX)),
            "structured_data_schema": {
                "type": ["object", "null"],
                "description": (
                    "JSON Schema of analysis_result.structured_data, applied off the event "
                    f"loop under a time limit: at most {MAX_SCHEMA_BYTES} bytes of JSON and "
                    f"{MAX_DEPTH} levels of nested schemas; pattern, patternProperties, "
                    "$dynamicRef/$recursiveRef and $ref outside the schema are refused (400 "
                    "naming the keyword's place)."
                ),
            },
            "success_evaluation_rubric": nullable(text(ANALYSIS_TEXT_MAX)),
        }
    ),
    "assistant_request": obj(
        {"timeout_seconds": nullable({"type": "integer", "minimum": 1, "maximum": 20})},
        strict=True,
    )
    | {
        "description": (
            "Inbound calls to this assistant's numbers first ask the organization's server "
            "(assistant-request webhook); this assistant answers when it gives no usable "
            "answer in time."
        )
    },
    "record": {
        "type": "boolean",
        "description": "Record the call (stereo: caller left, assistant right) into the "
        "[recordings] directory; GET /calls/{id}/recording downloads it.",
    },
    "voicemail_detection": {
        "enum": list(VOICEMAIL_DETECTION),
        "description": "Outbound calls: decide human / machine / unknown from the callee's "
        'first seconds; a machine ends the call "voicemail", after leaving voicemail_message '
        "at the beep with detect-and-leave-message. Default off.",
    },
    "voicemail_message": {
        **_LONG_TEXT,
        "description": "What is left on an answering machine (default: the first message).",
    },
    "silence_prompt_message": {
        **_LONG_TEXT,
        "description": "Said after silence_prompt_seconds of the caller's silence, before the "
        'silence timeout ends the call (default "Are you still there?").',
    },
    "dead_air_message": {
        **_LONG_TEXT,
        "description": "Said when a reply has no audio dead_air_seconds after the caller's "
        'words were heard (a stalled provider); default "One moment, please.".',
    },
}
# In a request, null for an optional setting is the same as leaving it out (in a PATCH: it
# removes the setting); an assistant's name and active are never null.
_CONFIG_IN: dict[str, Schema] = {key: nullable(schema) for key, schema in _CONFIG_PROPS.items()}
_PROFILE_IN: dict[str, Schema] = {
    "name": _CONFIG_PROPS["name"],
    "active": {"type": "boolean"},
}

_BUSINESS_NAME_OUT = nullable(_CONFIG_PROPS["business_name"]) | {"description": "null: none"}

SCHEMAS: dict[str, Schema] = {
    # The provider sections of an assistant configuration (one schema each, referenced).
    "SttConfig": _section(provider_keys.STT),
    "TtsConfig": _section(provider_keys.TTS),
    "LlmConfig": _LLM_SECTIONS,
    "RealtimeConfig": _REALTIME_SECTION,
    "AssistantConfig": {
        **obj(_CONFIG_IN),
        **_PROVIDER_RULES,
        "description": "null for an optional setting: not set (the saved assistant's, or the "
        "default, applies).",
    },
    "Assistant": obj(
        {
            "id": {"type": "string"},
            "active": {"type": "boolean"},
            **_CONFIG_PROPS,
            "business_name": nullable(_CONFIG_PROPS["business_name"])
            | {"description": "null: none"},
            "created_at": TIME,
            "updated_at": TIME,
        },
        ("id", "name", "active"),
        strict=False,
    ),
    "AssistantCreate": {
        **obj({**_CONFIG_IN, **_PROFILE_IN}, ("name",)),
        **_PROVIDER_RULES,
        "description": "null for an optional setting: not set (its default applies).",
    },
    "AssistantUpdate": {
        **obj({**_CONFIG_IN, **_PROFILE_IN}),
        **_PROVIDER_RULES,
        "description": "The settings sent replace the assistant's; null removes an optional "
        "setting (its default applies again; business_name: none).",
    },
}


PATHS: dict[str, Schema] = {
    "/assistants": {
        "get": operation("List assistants", ("200", None), errors="401"),
        "post": operation(
            "Create an assistant",
            ("201", "Assistant"),
            body="AssistantCreate",
            errors="400 401 413 422",
        ),
    },
    "/assistants/{id}": {
        "get": operation(
            "Get an assistant", ("200", "Assistant"), params=[PATH_ID], errors="401 404"
        ),
        "patch": operation(
            "Update an assistant",
            ("200", "Assistant"),
            body="AssistantUpdate",
            params=[PATH_ID],
            errors="400 401 404 413 422",
        ),
        "delete": operation(
            "Delete an assistant", ("204", None), params=[PATH_ID], errors="401 404 409"
        ),
    },
}
