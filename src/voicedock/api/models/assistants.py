"""``/assistants``: an organization's saved assistants, and the assistant configuration that
``POST /calls/outbound`` and ``POST /campaigns`` also take (transient or as an override).

One table of settings (name, type) makes the configuration in a request (every setting
optional; null: not set, or in a PATCH removed) and in an answer. The limits (``LIMIT_FIELDS``),
providers, formats and bounds are calls/assistants/config.py's; calls/assistants/config.py also
decides what the settings mean (check_config, resolve_provider)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.api.models.analysis_templates import AnalysisPlan
from voicedock.api.models.base import Body, Reply
from voicedock.api.models.field_types import Time, text
from voicedock.api.models.operations import Schema, operation
from voicedock.api.models.provider_sections import PROVIDER_RULES, Merge, section_rules
from voicedock.api.models.tools import TOOL_ITEM
from voicedock.calls.assistants.config import (
    CONFIG_TEXT_MAX,
    LIMIT_FIELDS,
    PROFILE_TEXT_MAX,
    VOICEMAIL_DETECTION,
)
from voicedock.calls.assistants.providers import PROVIDERS
from voicedock.calls.tools.config import MAX_TOOLS
from voicedock.domain import tenant_provider_fields
from voicedock.domain.assistant_config import (
    TURN_DETECTIONS,
    AssistantRequest,
    ConsentPlan,
    Keypad,
    Knowledge,
    Languages,
    LlmFiller,
    Memory,
    PhoneMenu,
    RedactionPlan,
    ToolFiller,
    config_json,
)
from voicedock.domain.audio import CALL_MEDIA_FORMATS
from voicedock.domain.flows import Flow
from voicedock.domain.records import Assistant as AssistantRecord
from voicedock.domain.secret_fields import masked
from voicedock.domain.timestamps import iso


def _one_of(values: tuple[str, ...]) -> Any:
    """``Literal[values]`` for a tuple of a lower floor (one source of the choices)."""
    return Literal.__getitem__(values)


def _section(kind: str, name: str) -> Any:
    """A provider section: decoded into its type (domain/tenant_provider_fields.py: the keys
    some provider of ``kind`` takes, each bounded), documented per provider by ``name``
    (models/provider_sections.py)."""
    return tenant_provider_fields.SECTIONS[kind]


LongText = Annotated[str, text(CONFIG_TEXT_MAX)]
ProfileText = Annotated[str, text(PROFILE_TEXT_MAX)]


def _described(kind: Any, description: str) -> Any:
    return Annotated[kind, Meta(description=description)]


# The settings of a configuration: name -> type (in an answer; a request also takes null).
SETTINGS: dict[str, Any] = {
    "name": ProfileText,
    "business_name": ProfileText,
    "provider": _one_of(PROVIDERS),
    "first_message": LongText,
    "system_prompt": LongText,
    "llm_config": tenant_provider_fields.LlmSection,  # its description: its type's
    "stt_config": _section(tenant_provider_fields.STT, "SttConfig"),
    "tts_config": _section(tenant_provider_fields.TTS, "TtsConfig"),
    "facts": dict[str, str],
    **{
        key: Annotated[int, Meta(ge=low, le=high)] | None
        for key, (low, high) in LIMIT_FIELDS.items()
    },
    "media_format": _described(
        _one_of(CALL_MEDIA_FORMATS),
        "Call audio between the PBX and voicedock; default: the trunk's codec.",
    ),
    "tools": Annotated[
        list[Annotated[object, Meta(extra_json_schema=TOOL_ITEM)]],
        Meta(
            max_length=MAX_TOOLS,
            description="Functions the model may call: webhook tools (answered by the "
            "organization's server through the tool-calls webhook) and the built-ins end_call, "
            "transfer_call (destinations, mode, message), send_dtmf and collect_secure_digits "
            "(keypad digits only the organization's server receives; docs/privacy.md), "
            "and mcp: an MCP server's tools (server.url, server.headers read masked, "
            "allowed_tools), listed when a call starts. docs/tools.md.",
        ),
    ],
    "tool_filler": ToolFiller,
    "llm_filler": LlmFiller,
    "keypad": Keypad,
    "redaction_plan": RedactionPlan,
    "consent_plan": ConsentPlan,
    "phone_menu": PhoneMenu,
    "knowledge": Knowledge,
    "memory": Memory,
    "flow": Flow,
    "analysis_plan": AnalysisPlan,
    "assistant_request": AssistantRequest,
    "record": _described(
        bool,
        "Record the call (stereo: caller left, assistant right) into the [recordings] "
        "directory; GET /calls/{id}/recording downloads it.",
    ),
    "voicemail_detection": _described(
        _one_of(VOICEMAIL_DETECTION),
        "Outbound calls: decide human / machine / screening / unknown from the callee's first "
        'seconds; a machine ends the call "voicemail", after leaving voicemail_message at the '
        "beep with detect-and-leave-message; a screening assistant hears screening_message. "
        "Default off.",
    ),
    "turn_detection": _described(
        _one_of(TURN_DETECTIONS),
        "How a pipeline call decides the caller finished a turn: model (a turn model hears "
        "it in the caller's voice: a finished sentence is answered after a short pause, one "
        "left hanging waits longer) or silence (the silence after the words, longer when "
        "they trail off). Default: the operator's (silence unless the operator chose model; "
        "model is silence on a node without the turn model); speech-to-speech providers "
        "detect turns themselves. "
        "docs/speech.md.",
    ),
    "barge_in_on_words": _described(
        bool,
        "Pipeline calls: the caller's words decide a barge-in. Speech over the assistant "
        "pauses it at once; a noise, a cough or a backchannel (mm-hm, yeah, okay: the "
        "operator's list per language) lets it go on where it stopped, words interrupt it. "
        "Default: the operator's ([speech.barge_in] on_words, off unless set). docs/speech.md.",
    ),
    "noise_suppression": _described(
        bool,
        "Denoise the caller's audio (RNNoise, on the node) before voice activity detection "
        "and speech recognition: street, car and babble noise heard less as speech, at some "
        "CPU per call. Default (left out or null): the operator's (off unless the operator "
        "turned it on). Pipeline calls only; docs/speech.md.",
    ),
    "languages": _described(
        Languages,
        "The languages the assistant speaks besides its own (1-5, each a BCP 47 primary "
        'tag such as "de", listed once): the voice for it (voice.voice, a voice of the TTS '
        "provider on this node: espeak-ng de; none with Piper, which speaks its one voice, "
        "English when packaged, and only that language), a line for the system prompt "
        "(prompt) and a first message, each at most 500 characters, and the country calling "
        'codes (calling_codes, 1-10 of 1-3 digits such as "49") whose numbers open a call in '
        "it: its first message greets, in its voice (an inbound call's number may say its "
        "own language: PATCH /phone-numbers). A pipeline call follows the caller's language "
        "turn by turn. docs/speech.md (Languages).",
    ),
    "voicemail_message": _described(
        LongText, "What is left on an answering machine (default: the first message)."
    ),
    "screening_message": _described(
        LongText,
        "Said to a call-screening assistant that answered an outbound call (voicemail_detection "
        "on): who is calling and why; then the person who picks up hears the first message "
        "(default: built from business_name and metadata.purpose).",
    ),
    "silence_prompt_message": _described(
        LongText,
        "Said after silence_prompt_seconds of the caller's silence, before the silence timeout "
        'ends the call (default "Are you still there?").',
    ),
    "dead_air_message": _described(
        LongText,
        "Said when a reply has no audio dead_air_seconds after the caller's words were heard (a "
        'stalled provider); default "One moment, please.".',
    ),
}
_ACTIVE: Any = bool
# The sections as an answer carries them: as stored, which a configuration saved before a key
# was refused may still hold (never used: ``tenant_sections``), documented as requests are.
_STORED_SECTIONS: dict[str, Any] = {
    "llm_config": _described(dict[str, Any], str(tenant_provider_fields.LlmSection.__doc__)),
    "stt_config": Annotated[
        object, Meta(extra_json_schema={"$ref": "#/components/schemas/SttConfig"})
    ],
    "tts_config": Annotated[
        object, Meta(extra_json_schema={"$ref": "#/components/schemas/TtsConfig"})
    ],
}


def answered(key: str) -> Any:
    """The type of setting ``key`` in an answer."""
    return _STORED_SECTIONS.get(key, SETTINGS[key])


def _request(name: str, *, profile: bool, required: tuple[str, ...] = ()) -> type[Body]:
    """A request's configuration: every setting optional and nullable (an assistant's name
    and active are never null)."""
    fields: list[tuple[str, Any, Any]] = []
    for key, kind in SETTINGS.items():
        never_null = profile and key == "name"
        field_type = kind if never_null else kind | None
        if key in required:
            fields.append((key, field_type, msgspec.NODEFAULT))
        else:
            fields.append((key, field_type | UnsetType, UNSET))
    if profile:
        fields.append(("active", _ACTIVE | UnsetType, UNSET))
    return cast(
        "type[Body]",
        msgspec.defstruct(name, fields, bases=(Body,), kw_only=True, module=__name__),
    )


_RULES = (
    "Provider rules: xai_realtime takes no LLM filler (llm_filler null, or its delay_seconds "
    "null), and no stt_config or tts_config (null: none) but with llm_config.fallback_plan, "
    "whose pipeline they complete; openai and mistral require both and "
    "choose the LLM (llm_config names no other provider); a provider left out is the node's "
    "default (offline), which requires neither. The if/then below state them for the settings "
    "sent;"
)


def _config_schema(merge: Merge, description: str, merged: str) -> Schema:
    """A configuration's schema beyond its fields: the provider rules of a body ``merge``d so
    (``merged``: with what, which only the server sees: a 400 names the key)."""
    return {
        **PROVIDER_RULES,
        **section_rules(merge),
        "description": f"{description} {_RULES} {merged}",
    }


AssistantConfig = _request("AssistantConfig", profile=False)
AssistantConfig.SCHEMA = _config_schema(
    "whole",
    "A whole configuration, for one call (transient mode). null for an optional setting: not set.",
    "what this node has (its engines, voices, egress policy) only the server checks.",
)
AssistantOverride = _request("AssistantOverride", profile=False)
AssistantOverride.SCHEMA = _config_schema(
    "override",
    "What changes of the saved assistant for this call (hybrid mode), merged onto it key by "
    "key. null for an optional setting: not set (the saved assistant's applies).",
    "the saved assistant with this override merged onto it must meet them too (a section the "
    "override leaves out or sends as null is the saved one's).",
)
AssistantCreate = _request("AssistantCreate", profile=True, required=("name",))
AssistantCreate.SCHEMA = _config_schema(
    "whole",
    "null for an optional setting: not set (its default applies).",
    "the assistant completed by the organization's assistant_defaults (for what it leaves out "
    "or sends as null) must meet them too.",
)
AssistantUpdate = _request("AssistantUpdate", profile=True)
AssistantUpdate.SCHEMA = _config_schema(
    "patch",
    "The settings sent replace the assistant's; null removes an optional setting (its default "
    "applies again; business_name: none).",
    "the assistant with these settings replaced must meet them too.",
)


class TrafficShare(Reply, kw_only=True):
    """A version of the assistant and its weight in its traffic split."""

    version: int
    weight: int


_SPLIT_DESCRIPTION = (
    "The versions its calls run, each for its weight's share of the other parties' numbers "
    "(PUT /assistants/{id}/traffic-split); null: its current version."
)


_GATE_DESCRIPTION = (
    "The id of the test suite a version must pass before it is published "
    "(PUT /assistants/{id}/release-gate); null: none."
)


def _answer() -> type[Reply]:
    fields: list[tuple[str, Any, Any]] = [("id", str, msgspec.NODEFAULT)]
    for key in SETTINGS:
        kind = answered(key)
        if key == "name":
            fields.append((key, kind, msgspec.NODEFAULT))
        elif key == "business_name":
            fields.append((key, _described(kind | None, "null: none"), None))
        else:
            fields.append((key, kind | UnsetType, UNSET))
    version = Annotated[
        int, Meta(ge=1, description="Its current version (GET /assistants/{id}/versions)")
    ]
    split = Annotated[list[TrafficShare] | None, Meta(description=_SPLIT_DESCRIPTION)]
    gate = Annotated[str | None, Meta(description=_GATE_DESCRIPTION)]
    fields[2:2] = [
        ("active", bool, msgspec.NODEFAULT),
        ("version", version, msgspec.NODEFAULT),
        ("traffic_split", split, None),
        ("release_gate", gate, None),
    ]
    fields += [("created_at", Time, None), ("updated_at", Time, None)]
    return cast(
        "type[Reply]",
        msgspec.defstruct("Assistant", fields, bases=(Reply,), kw_only=True, module=__name__),
    )


Assistant = _answer()


def assistant_reply(a: AssistantRecord) -> Reply:
    """An assistant as answered: its provider keys masked (they are write-only)."""
    return msgspec.convert(
        {
            "id": a.id,
            "name": a.name,
            "business_name": a.business_name or None,  # null: none
            "active": a.active,
            "version": a.version,
            "traffic_split": None
            if a.traffic_split is None
            else [msgspec.structs.asdict(share) for share in a.traffic_split],
            "release_gate": a.release_gate,
            **masked(config_json(a.config)),
            "created_at": iso(a.created_at),
            "updated_at": iso(a.updated_at),
        },
        Assistant,
    )


class AssistantList(Reply, kw_only=True):
    assistants: list[Assistant]  # type: ignore[valid-type]


PATHS: dict[str, Schema] = {
    "/assistants": {
        "get": operation("List assistants", ("200", AssistantList), errors="401"),
        "post": operation(
            "Create an assistant",
            ("201", Assistant),
            body=AssistantCreate,
            errors="400 401 403 413 422",
        ),
    },
    "/assistants/{id}": {
        "get": operation("Get an assistant", ("200", Assistant), errors="401 404"),
        "patch": operation(
            "Update an assistant",
            ("200", Assistant),
            body=AssistantUpdate,
            errors="400 401 403 404 409 413 422",
        ),
        "delete": operation("Delete an assistant", ("204", None), errors="401 404 409"),
    },
}
MODELS = (
    TrafficShare,
    AssistantConfig,
    AssistantOverride,
    AssistantCreate,
    AssistantUpdate,
    Assistant,
    AssistantList,
)
