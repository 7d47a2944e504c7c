"""The OpenAPI 3.1 description of every route (hand-written; a test checks it is complete)."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from voicedock import __version__
from voicedock.api.body import CURSOR_PATTERN, MAX_OFFSET
from voicedock.api.openapi_campaigns import (
    ASSISTANT_CHOICE_PROPS,
    CAMPAIGN_PATHS,
    CAMPAIGN_SCHEMAS,
)
from voicedock.api.openapi_console import CONSOLE_PATHS, CONSOLE_SCHEMAS
from voicedock.api.openapi_schema import (
    DESTINATION,
    E164,
    ID,
    PATH_ID,
    TEXT,
    TIME,
    Schema,
    assistant_choice,
    nullable,
    obj,
    operation,
    ref,
    text,
)
from voicedock.api.openapi_tools import TOOL_ITEM, TOOL_TEMPLATE_PATHS, TOOL_TEMPLATE_SCHEMAS
from voicedock.api.openapi_usage import USAGE_PATHS, USAGE_SCHEMAS
from voicedock.api.openapi_voices import VOICE_PATHS, VOICE_SCHEMAS
from voicedock.api.openapi_webhooks import WEBHOOK_PATHS, WEBHOOK_SCHEMAS
from voicedock.calls.assistant_config import (
    ANALYSIS_TEXT_MAX,
    CONFIG_TEXT_MAX,
    DEFAULT_LLM_FILLER_DELAY_S,
    DEFAULT_LLM_FILLER_MESSAGES,
    KEYPAD_DEFAULTS,
    KEYPAD_MAX_DIGITS,
    KEYPAD_TERMINATORS,
    KEYPAD_TIMEOUT,
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
from voicedock.calls.control import TRANSFER_MODES
from voicedock.calls.outbound_request import RING_TIMEOUT_BOUNDS, RING_TIMEOUT_DEFAULT
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
    "keypad": obj(
        {
            "timeout_seconds": {
                "type": ["number", "null"],
                "minimum": KEYPAD_TIMEOUT[0],
                "maximum": KEYPAD_TIMEOUT[1],
                "default": KEYPAD_DEFAULTS["timeout_seconds"],
                "description": "The entry ends this long after the last key pressed.",
            },
            "terminator": {
                "enum": [*KEYPAD_TERMINATORS, None],
                "default": KEYPAD_DEFAULTS["terminator"],
                "description": "The key that ends the entry (kept in it); null: none.",
            },
            "max_digits": {
                "type": ["integer", "null"],
                "minimum": KEYPAD_MAX_DIGITS[0],
                "maximum": KEYPAD_MAX_DIGITS[1],
                "default": KEYPAD_DEFAULTS["max_digits"],
                "description": "The entry ends with this many keys.",
            },
        },
        strict=True,
    )
    | {
        "description": (
            "The caller's keypad: the keys of one entry become one user turn, "
            '"Keypad: 1234#", answered like a spoken one; each key barges in like speech. '
            "Without a plan, the defaults apply. docs/keypad.md."
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
_CALL_SUMMARY_PROPS: dict[str, Schema] = {
    "id": {"type": "string"},
    "caller_phone": {"type": ["string", "null"]},
    "assistant_phone": {"type": ["string", "null"]},
    "status": {"enum": ["connecting", "in-progress", "ended", "failed"]},
    "error": {"type": ["string", "null"]},
    "started_at": TIME,
    "ended_at": TIME,
    "duration_seconds": {"type": ["integer", "null"]},
    "summary": {"type": ["string", "null"]},
    "agent_name": {"type": ["string", "null"]},
    "business_name": {"type": ["string", "null"]},
    "created_at": TIME,
    "updated_at": TIME,
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
    "Error": obj(
        {"error": {"type": "string"}, "message": {"type": "string"}},
        ("error", "message"),
        strict=False,
    ),
    "AssistantConfig": {
        **obj(_CONFIG_IN),
        **_PROVIDER_RULES,
        "description": "null for an optional setting: not set (the saved assistant's, or the "
        "default, applies).",
    },
    "OutboundCallRequest": obj(
        {
            "destination": DESTINATION,
            **ASSISTANT_CHOICE_PROPS,
            "number_id": nullable(ID),
            "ring_timeout_seconds": nullable(
                {
                    "type": "integer",
                    "minimum": RING_TIMEOUT_BOUNDS[0],
                    "maximum": RING_TIMEOUT_BOUNDS[1],
                    "default": RING_TIMEOUT_DEFAULT,
                    "description": "Seconds the call may ring unanswered; then it fails no-answer.",
                }
            ),
            "record": nullable(
                {
                    "type": "boolean",
                    "description": "Record this call (overrides the assistant's record).",
                }
            ),
            "agent_id": {**ID, "deprecated": True},
            "agent": {**ref("AssistantConfig"), "deprecated": True},
            "agent_config": {**ref("AssistantConfig"), "deprecated": True},
        },
        ("destination",),
    )
    | assistant_choice(
        ("assistant_id", "agent_id"), ("assistant", "agent"), ("assistant_override", "agent_config")
    ),
    "OutboundCallResponse": obj(
        {
            "success": {"type": "boolean"},
            "call_id": {"type": "string"},
            "room_name": {"type": "string"},
            "status": {"enum": ["dialing"]},
        },
        ("success", "call_id", "status"),
        strict=False,
    ),
    "CallSummary": obj(_CALL_SUMMARY_PROPS, tuple(_CALL_SUMMARY_PROPS), strict=False),
    "CallList": obj(
        {
            "calls": {"type": "array", "items": ref("CallSummary")},
            "pagination": obj(
                {n: {"type": "integer"} for n in ("total", "limit", "offset")},
                ("total", "limit", "offset"),
            ),
            "next_cursor": {"type": ["string", "null"]},
        },
        ("calls", "pagination"),
        strict=False,
    ),
    "Call": obj(
        {
            **_CALL_SUMMARY_PROPS,
            "analysis_result": nullable(
                obj(
                    {
                        "summary": {},
                        "sentiment": {},
                        "method": {"enum": ["llm", "heuristic"]},
                        "structured_data": {"type": ["object", "null"]},
                        "structured_data_error": {"type": "string"},
                        "success_evaluation": {"type": ["string", "null"]},
                    },
                    strict=False,
                )
            ),
            "messages": {"type": "array", "items": obj({"role": {}, "content": {}}, strict=False)},
            "agent_id": {"type": ["string", "null"]},
            "number_id": {"type": ["string", "null"]},
            "phone_number": {"type": ["string", "null"]},
            "direction": {"enum": ["inbound", "outbound"]},
            "end_reason": {
                "type": ["string", "null"],
                "description": 'Why the call ended; "cancelled": end-call before answer.',
            },
            "transferred_to": {"type": ["string", "null"]},
            "transferred_at": TIME,
            "node": {
                "type": ["string", "null"],
                "description": "The voicedock node serving the call ([node] id).",
            },
            "pbx": {
                "type": ["string", "null"],
                "description": "The PBX server carrying the call ([[pbx.asterisk.servers]] "
                "name); null with one PBX.",
            },
            "api_key_id": {
                "type": ["string", "null"],
                "description": "The API key that placed the call (see /api-keys); null inbound.",
            },
            "latency": {"type": "array"},
            "timings": nullable(
                {
                    **obj(
                        {
                            "media_connected_ms": {
                                "type": ["integer", "null"],
                                "description": "The answer → the call's media connected (the "
                                "media leg up and bridged with the callee): audio written from "
                                "then on reaches them.",
                            },
                            "first_audio_ms": {
                                "type": ["integer", "null"],
                                "description": "The answer → the assistant's first audio "
                                "written to the media leg (the greeting, when there is a first "
                                "message); null: nothing was said.",
                            },
                        },
                        strict=False,
                    ),
                    "description": "The media leg after the answer, in ms from the answer as "
                    "voicedock learnt it (started_at); null: not answered, or no media.",
                }
            ),
            "recording_url": {
                "type": ["string", "null"],
                "description": "GET it (same API key) for the call's recording; null: none.",
            },
            "recording_duration_seconds": {"type": ["number", "null"]},
            "answering_machine": nullable(
                obj(
                    {
                        "result": {"enum": ["human", "machine", "unknown"]},
                        "evidence": {
                            "type": "object",
                            "description": "reason, decided_at_ms, initial_silence_ms, "
                            "greeting_ms, beep_at_ms (ms of the callee's audio); "
                            "message_at_ms when a message was left.",
                        },
                    },
                    strict=False,
                )
            ),
            "usage": ref("CallUsage"),
            "events": {
                "type": "array",
                "items": {"type": "object"},
                "description": "The call's timeline ({type, data, created_at}). A transcript "
                "event's data has role, content, started_at, ended_at, interrupted: the first "
                "assistant one's started_at minus the call's started_at is how long the callee "
                "waited for the greeting after answering.",
            },
            "campaign_id": {
                "type": ["string", "null"],
                "description": "The campaign whose contact the call dials (also in the list).",
            },
        },
        ("id", "status", "messages", "created_at"),
        strict=False,
    ),
    "ControlCommand": {
        "oneOf": [
            obj(
                {
                    "type": {"const": "inject-context"},
                    "content": TEXT,
                    "trigger_response": {"type": "boolean"},
                },
                ("type", "content"),
            ),
            obj({"type": {"const": "say"}, "content": TEXT}, ("type", "content")),
            {
                **obj({"type": {"const": "end-call"}, "message": TEXT}, ("type",)),
                "description": "Ends an answered call; cancels a call still connecting.",
            },
            obj(
                {
                    "type": {"const": "transfer"},
                    "destination": {"anyOf": [E164, ID]},
                    "announcement": TEXT,
                    "mode": {"enum": list(TRANSFER_MODES)},
                    "summary": TEXT,
                },
                ("type", "destination"),
            ),
        ]
    },
    "ControlResponse": obj(
        {"success": {"type": "boolean"}, "message": {"type": "string"}},
        ("success", "message"),
    ),
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
    "PhoneNumber": obj(
        {
            "id": {"type": "string"},
            "number": E164,
            "trunk": {"type": "string"},
            "max_concurrent_calls": {"type": "integer"},
            "assistant_id": {"type": ["string", "null"]},
            "label": {"type": "string"},
            "last_used_at": TIME,
            "created_at": TIME,
            "updated_at": TIME,
        },
        ("id", "number", "trunk", "max_concurrent_calls"),
        strict=False,
    ),
    "PhoneNumberUpdate": obj(
        {
            "assistant_id": nullable(ID),
            "label": {**nullable(text(200, line=True)), "description": "null: no label"},
            # The operator's: named here so that a client learns it, refused with 403.
            **{
                key: {"description": "The operator's (voicedock numbers): 403 Operator setting"}
                for key in ("number", "trunk", "max_concurrent_calls")
            },
        }
    ),
    "Trunk": obj(
        {
            **{n: {"type": "string"} for n in ("name", "endpoint", "codec", "description")},
            "pbx": {
                "type": ["string", "null"],
                "description": "The PBX server carrying the trunk; null with one PBX.",
            },
        },
        ("name",),
        strict=False,
    ),
    "Health": obj(
        {
            "status": {
                "enum": ["ok", "degraded", "unavailable"],
                "description": "ok (200): the database answers and every PBX link is up, or "
                "pbx.kind is none; degraded: the database answers but a PBX link is down — 200 "
                "while calls can still be placed (one of several servers down), 503 when they "
                "cannot; unavailable (503): the database does not answer.",
            },
            "can_place_calls": {"type": "boolean"},
            "database": obj({"status": {"enum": ["up", "down"]}}, ("status",), strict=False),
            "pbx": obj(
                {
                    "kind": {"type": "string", "description": "asterisk, freeswitch or none"},
                    "status": {"enum": ["up", "down", "disabled"]},
                    "links": {
                        "type": "object",
                        "description": "Each connection calls need: ari and (when originating "
                        "through AMI) ami for Asterisk, esl for FreeSWITCH; none for kind none.",
                        "additionalProperties": {"enum": ["up", "down"]},
                    },
                    "servers": {
                        "type": "object",
                        "description": "Several PBX servers ([[pbx.asterisk.servers]]): each "
                        "one's status and links by name (links above are then named "
                        "<server>.<link>). Calls can be placed while any server is up (200); "
                        "status is ok only while every one is.",
                        "additionalProperties": obj(
                            {
                                "status": {"enum": ["up", "down"]},
                                "links": {
                                    "type": "object",
                                    "additionalProperties": {"enum": ["up", "down"]},
                                },
                            },
                            ("status", "links"),
                            strict=False,
                        ),
                    },
                },
                ("kind", "status", "links"),
                strict=False,
            ),
        },
        ("status", "can_place_calls", "database", "pbx"),
        strict=False,
    ),
}


def _health_op() -> Schema:
    op = operation(
        "Service health: database and PBX links", ("200", "Health"), errors="", public=True
    )
    op["responses"]["503"] = {
        "description": "The service cannot place calls (the body names the component down)",
        "content": {"application/json": {"schema": ref("Health")}},
    }
    return op


def _operators_numbers(
    summary: str, description: str, params: list[Schema] | None = None
) -> Schema:
    """A phone-number route that no API key may use: it answers 403 (or 404 / 401)."""
    op = operation(summary, ("403", None), params=params, errors="401 404" if params else "401")
    op["responses"]["403"] = {
        "description": "Operator setting: phone numbers are created, moved and removed by the "
        "operator",
        "content": {"application/json": {"schema": ref("Error")}},
    }
    return {**op, "description": description}


_LIST_PARAMS: list[Schema] = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    {
        "name": "offset",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    },
    {
        "name": "status",
        "in": "query",
        "schema": {"enum": ["connecting", "in-progress", "ended", "failed"]},
        "description": 'A call the outbound response calls "dialing" is connecting until answered.',
    },
    {"name": "start_date", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "end_date", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {
        "name": "campaign_id",
        "in": "query",
        "schema": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"},
        "description": "Only the calls this campaign placed (one per attempt of each contact).",
    },
    {
        "name": "cursor",
        "in": "query",
        "schema": {"type": "string", "pattern": CURSOR_PATTERN},
        "description": "next_cursor of the previous page, unchanged (empty: the first page)",
    },
]
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[!-~]+$"},
    "description": "A replay returns the first response and places no second call.",
}

PATHS: dict[str, Schema] = {
    "/calls": {
        "get": operation("List calls", ("200", "CallList"), params=_LIST_PARAMS, errors="400 401"),
    },
    "/calls/outbound": {
        "post": operation(
            "Initiate outbound call",
            ("200", "OutboundCallResponse"),
            body="OutboundCallRequest",
            params=[_IDEMPOTENCY],
            errors="400 401 403 404 413 422 429 503",
        ),
    },
    "/calls/{id}": {
        "get": operation("Get call by ID", ("200", "Call"), params=[PATH_ID], errors="401 404"),
    },
    "/calls/{id}/recording": {
        "get": {
            **operation(
                "Download the call's recording", ("200", None), params=[PATH_ID], errors="401 404"
            ),
            "description": "WAV or FLAC, stereo: caller left, assistant right. Range requests "
            "are answered 206. 404 when the call has no recording or it was deleted (retention).",
        },
    },
    "/calls/{id}/control": {
        "post": operation(
            "Send control command to active call",
            ("200", "ControlResponse"),
            body="ControlCommand",
            params=[PATH_ID],
            errors="400 401 403 404 409 413 503",
        ),
    },
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
    "/phone-numbers": {
        "get": operation("List the organization's phone numbers", ("200", None), errors="401"),
        "post": _operators_numbers(
            "Register a phone number: refused, numbers are the operator's",
            "Every API key gets 403 `Operator setting` and nothing is stored: the operator adds "
            "numbers with `[[numbers]]` in the configuration or `voicedock numbers add`.",
        ),
    },
    "/phone-numbers/{id}": {
        "get": operation(
            "Get a phone number", ("200", "PhoneNumber"), params=[PATH_ID], errors="401 404"
        ),
        "patch": {
            **operation(
                "Set a phone number's label or assistant",
                ("200", "PhoneNumber"),
                body="PhoneNumberUpdate",
                params=[PATH_ID],
                errors="400 401 403 404 413 422",
            ),
            "description": "`label` and `assistant_id` (one of the organization's assistants, "
            "else 422) only; `number`, `trunk` and `max_concurrent_calls` are the operator's "
            "(403 `Operator setting`). Another organization's number is 404.",
        },
        "delete": _operators_numbers(
            "Delete a phone number: refused, numbers are the operator's",
            "403 `Operator setting` for the organization's own number (the operator removes it "
            "with `voicedock numbers remove`); 404 for any other id.",
            params=[PATH_ID],
        ),
    },
    "/trunks": {
        "get": {
            **operation("List the trunks open to the organization", ("200", None), errors="401"),
            "description": "Trunks are defined in the configuration. Listed: those whose "
            "`organizations` name the caller's organization, and those without a list that "
            "carry one of its numbers.",
        }
    },
    "/trunks/{name}": {
        "get": operation(
            "Get a trunk open to the organization (else 404)",
            ("200", "Trunk"),
            params=[{**PATH_ID, "name": "name"}],
            errors="401 404",
        ),
    },
    "/health": {"get": _health_op()},
    "/openapi.json": {"get": operation("This document", ("200", None), errors="", public=True)},
    # Client media mode only (else 404); the call's token in MEDIA_START is the credential.
    "/media": {
        "get": operation(
            "Call media websocket (client mode): Asterisk connects; a MEDIA_START without the "
            "call's token (VOICEDOCK_MEDIA_TOKEN, set over ARI) is closed with 1008",
            ("101", None),
            errors="404",
            public=True,
        )
    },
}


# Links between operations (OpenAPI "links"): what a creation answers names the resource the
# next operations take, e.g. the call_id of POST /calls/outbound feeds GET /calls/{id}.
# (source path, its success status, body field, the operations that take it as "id").
_LINKS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("/calls/outbound", "200", "call_id", ("get /calls/{id}", "post /calls/{id}/control")),
    (
        "/assistants",
        "201",
        "id",
        ("get /assistants/{id}", "patch /assistants/{id}", "delete /assistants/{id}"),
    ),
    (
        "/tool-templates",
        "201",
        "id",
        ("get /tool-templates/{id}", "patch /tool-templates/{id}", "delete /tool-templates/{id}"),
    ),
    ("/webhooks", "201", "id", ("get /webhooks/{id}", "delete /webhooks/{id}")),
    (
        "/campaigns",
        "201",
        "id",
        (
            "get /campaigns/{id}",
            "get /campaigns/{id}/contacts",
            "post /campaigns/{id}/contacts",
            "post /campaigns/{id}/pause",
            "post /campaigns/{id}/resume",
            "post /campaigns/{id}/cancel",
        ),
    ),
    (
        "/api-keys",
        "201",
        "id",
        ("get /api-keys/{id}", "patch /api-keys/{id}", "delete /api-keys/{id}"),
    ),
)


def _with_links(paths: dict[str, Schema]) -> dict[str, Schema]:
    for source, status, field, targets in _LINKS:
        links: Schema = {}
        for target in targets:
            method, path = target.split(" ")
            name = method.capitalize() + "".join(
                part.strip("{}").capitalize() for part in path.split("/") if part
            )
            links[name] = {
                "operationRef": "#/paths/"
                + path.replace("~", "~0").replace("/", "~1")
                + "/"
                + method,
                "parameters": {"id": f"$response.body#/{field}"},
            }
        paths[source]["post"]["responses"][status]["links"] = links
    # A saved assistant is what a call (or a campaign) names: its id fills the body's field.
    for name, target in (("PlaceCall", "/calls/outbound"), ("StartCampaign", "/campaigns")):
        paths["/assistants"]["post"]["responses"]["201"]["links"][name] = {
            "operationRef": "#/paths/" + target.replace("/", "~1") + "/post",
            "requestBody": {"assistant_id": "$response.body#/id"},
        }
    return paths


def openapi_document() -> Schema:
    return copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": {
                "title": "VoiceDock API",
                "version": __version__,
                "description": "AI voice assistants on the phone through your own PBX.",
            },
            "servers": [{"url": "/"}],
            "security": [{"BearerAuth": []}],
            "paths": _with_links(
                copy.deepcopy(
                    {
                        **PATHS,
                        **WEBHOOK_PATHS,
                        **CAMPAIGN_PATHS,
                        **CONSOLE_PATHS,
                        **TOOL_TEMPLATE_PATHS,
                        **VOICE_PATHS,
                        **USAGE_PATHS,
                    }
                )
            ),
            "components": {
                "schemas": {
                    **SCHEMAS,
                    **WEBHOOK_SCHEMAS,
                    **CAMPAIGN_SCHEMAS,
                    **CONSOLE_SCHEMAS,
                    **TOOL_TEMPLATE_SCHEMAS,
                    **VOICE_SCHEMAS,
                    **USAGE_SCHEMAS,
                },
                "securitySchemes": {
                    "BearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "API key authentication.",
                    }
                },
            },
        }
    )
