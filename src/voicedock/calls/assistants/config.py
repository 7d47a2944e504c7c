"""Assistant configurations: strict shape, hybrid-mode deep merge, provider rules.

A configuration is the JSON object saved with an assistant (``Assistant.config``) or sent as a
transient ``assistant``. Provider rules from the API documentation:

* ``xai_realtime`` is speech-to-speech: what voicedock says verbatim on such a call (first
  message, ``say``, final messages) is spoken by its own TTS in the voice of
  ``llm_config.say_voice`` (a TTS section: ``provider`` and ``voice``; the operator's
  ``[speech] tts`` when omitted), checked here; ``llm_config.fallback_plan`` (LLM sections)
  names the pipeline the call goes on with when its session fails, completed by
  ``stt_config`` and ``tts_config``, which are refused without it;
* ``openai`` and ``mistral`` need both ``stt_config`` and ``tts_config``, and choose the LLM:
  ``llm_config`` (optional) inherits the provider, and naming another one is an error;
* any other provider (``offline``, the default) gets the missing parts from the settings.

Sections without a ``provider`` get the operator's ``[speech]`` engine; an LLM without a
``model`` gets the provider's default model. Provider names are checked against the registry, so
an unknown one is a 400 when the call is placed, not a dead call.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Annotated, Literal, TypeVar, cast, get_args

import msgspec
import msgspec.inspect as mi
from msgspec import UNSET, Meta

from voicedock.calls import json_readers
from voicedock.calls.assistants.flows import FLOW, FLOW_WORDS, check_flow_graph
from voicedock.calls.assistants.providers import (
    NEEDS_STT_AND_TTS,
    PROVIDERS,
    SPEECH_TO_SPEECH,
    Provider,
)
from voicedock.calls.assistants.urls import check_tenant_urls
from voicedock.calls.tools.config import TEMPLATE_ID, check_tools
from voicedock.config import SpeechSettings
from voicedock.domain import tenant_provider_fields
from voicedock.domain.assistant_config import (
    ANALYSIS_TEXT_MAX,
    CALLING_CODES_MAX,
    CONFIG_FIELDS,
    CONSENT_KEYS,
    CONSENT_MESSAGE_MAX,
    CONSENT_MODES,
    CONSENT_REFUSALS,
    CONSENT_TIMEOUT,
    KEYPAD_MAX_DIGITS,
    KEYPAD_TERMINATORS,
    KEYPAD_TIMEOUT,
    LANGUAGE_TEXT_MAX,
    LANGUAGES_MAX,
    LLM_FILLER_DELAY,
    LLM_FILLER_MESSAGES,
    MEMORY_CALLS,
    MODEL_SEES,
    PHONE_MENU_GOAL_MAX,
    PHONE_MENU_WAIT,
    REDACTION_PATTERN_MAX,
    REDACTION_PATTERNS_MAX,
    TOOL_FILLER_MESSAGE_MAX,
    TURN_DETECTIONS,
    AnalysisPlan,
    AnalysisTemplateRef,
    AssistantRequest,
    ConsentPlan,
    Keypad,
    Knowledge,
    Language,
    Languages,
    LlmFiller,
    Memory,
    PhoneMenu,
    Plan,
    RedactionPlan,
    SeedMessage,
    SttConfig,
    ToolFiller,
    TurnDetection,
    given,
    set_or,
)
from voicedock.domain.audio import CALL_MEDIA_FORMATS, MediaFormatName
from voicedock.domain.flows import NEXT_STEP, Flow
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.knowledge import (
    EVERY_TURN,
    MAX_BASES_PER_ASSISTANT,
    MAX_CHUNKS_PER_SEARCH,
    Retrieval,
)
from voicedock.domain.redaction import CATEGORIES
from voicedock.domain.tenant_provider_fields import FALLBACK_PLAN
from voicedock.domain.tenant_regex import tenant_regex_refusal
from voicedock.domain.tenant_schemas import check_tenant_schema, metaschema_error
from voicedock.egress import EgressPolicy
from voicedock.errors import BadRequest, UnresolvableConfig
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.pipeline.providers.registry import (
    llm_registry,
    stt_registry,
    tts_registry,
)
from voicedock.pipeline.providers.section import decoded
from voicedock.pipeline.speaking.node_voices import (
    ESPEAK,
    MULTILINGUAL,
    OPENAI,
    PIPER,
    piper_voices,
    voice_names,
)

log = logging.getLogger("voicedock.calls")

MESSAGE_ROLES = ("system", "user", "assistant")
WHISPER_NAMES = frozenset({"offline", "faster-whisper", "faster_whisper"})
# The model an LLM section gets when it names none (the API documentation recommends
# gpt-4o-mini for openai).
DEFAULT_LLM_MODELS = {"openai": "gpt-4o-mini", "mistral": "mistral-small-latest"}
SAY_VOICE = "say_voice"
# Each section's provider names (the registry's).
_PROVIDER_NAMES: dict[str, Callable[[], list[str]]] = {
    "stt_config": stt_registry.names,
    "llm_config": llm_registry.names,
    "tts_config": tts_registry.names,
}

# Answering-machine detection on outbound calls (pipeline/hearing/answering_machine.py).
VoicemailDetection = Literal["off", "detect", "detect-and-leave-message"]
VOICEMAIL_DETECTION: tuple[str, ...] = get_args(VoicemailDetection)


class ConfigValues(Plan, kw_only=True):
    """A configuration's settings of one value each (its sections and plans apart): a text
    (``check_config`` holds it to ``CONFIG_TEXT_MAX`` or ``PROFILE_TEXT_MAX``), a choice, the
    facts, a call limit (seconds; the defaults live in the pipeline); null or left out: not
    set."""

    name: str | None = None
    business_name: str | None = None
    first_message: str | None = None
    system_prompt: str | None = None
    voicemail_message: str | None = None
    screening_message: str | None = None
    silence_prompt_message: str | None = None
    dead_air_message: str | None = None
    provider: Provider | None = None
    facts: dict[str, str] | None = None
    silence_timeout_seconds: Annotated[int, Meta(ge=5, le=600)] | None = None
    max_duration_seconds: Annotated[int, Meta(ge=30, le=14_400)] | None = None
    silence_prompt_seconds: Annotated[int, Meta(ge=2, le=300)] | None = None
    dead_air_seconds: Annotated[int, Meta(ge=1, le=30)] | None = None
    media_format: MediaFormatName | None = None
    record: bool | None = None
    voicemail_detection: VoicemailDetection | None = None
    turn_detection: TurnDetection | None = None
    barge_in_on_words: bool | None = None
    noise_suppression: bool | None = None


def _bounds(kind: mi.Type) -> tuple[int, int] | None:
    """The bounds of an integer setting (``Annotated[int, Meta(ge=..., le=...)] | None``)."""
    for member in kind.types if isinstance(kind, mi.UnionType) else (kind,):
        if isinstance(member, mi.IntType) and member.ge is not None and member.le is not None:
            return member.ge, member.le
    return None


# Call limits an assistant may set (seconds): (low, high), as ``ConfigValues`` states them.
LIMIT_FIELDS = {
    field.name: bounds
    for field in cast("mi.StructType", mi.type_info(ConfigValues)).fields
    if (bounds := _bounds(field.type)) is not None
}
PROFILE_FIELDS = ("name", "business_name")
# The longest texts of a configuration (characters): the assistant's own (first_message,
# system_prompt, the spoken messages, llm_config.messages' contents), name and business_name,
# the analysis plan's prompts.
CONFIG_TEXTS = (
    "first_message",
    "system_prompt",
    "voicemail_message",
    "screening_message",
    "silence_prompt_message",
    "dead_air_message",
)
CONFIG_TEXT_MAX = 20_000
PROFILE_TEXT_MAX = 200
ANALYSIS_PLAN_FIELDS = AnalysisPlan.__struct_fields__
LLM_FILLER = "llm_filler"
ASSISTANT_REQUEST = "assistant_request"
DEFAULT_ASSISTANT_REQUEST_TIMEOUT_SECONDS = 5
KEYPAD = "keypad"
REDACTION_PLAN = "redaction_plan"
# A custom pattern RE2 refuses (what no schema states: back-references, look-arounds, syntax).
INVALID_PATTERN = "Invalid pattern"
INVALID_FLOW = "Invalid flow"  # a flow's graph its rules refuse (docs/flows.md)
CONSENT_PLAN = "consent_plan"
PHONE_MENU = "phone_menu"
KNOWLEDGE = "knowledge"
MEMORY = "memory"
LANGUAGES = "languages"


def check_assistant_choice(
    assistant_id: str | None, assistant: object, assistant_override: object
) -> tuple[JsonObject | None, JsonObject | None]:
    """Which assistant a call (or a campaign's calls) runs with: a saved one, optionally with
    an override, or a transient configuration (each checked by ``check_config``); 400 naming
    what is wrong. The transient configuration and the override, checked."""
    transient = None if assistant is None else json_readers.require_object(assistant, "assistant")
    override = (
        None
        if assistant_override is None
        else json_readers.require_object(assistant_override, "assistant_override")
    )
    if assistant_id is None and transient is None:
        raise BadRequest("assistant_id or assistant is required")
    if assistant_id is not None and transient is not None:
        raise BadRequest(
            "send either assistant_id (optionally with assistant_override) or assistant"
        )
    if override is not None and assistant_id is None:
        raise BadRequest("assistant_override needs assistant_id (use assistant for a full config)")
    return (
        None if transient is None else check_config(transient, "assistant", allow_profile=True),
        None
        if override is None
        else check_config(override, "assistant_override", allow_profile=True),
    )


def check_config(obj: Mapping[str, object], name: str, *, allow_profile: bool) -> JsonObject:
    """Validate the shape of a (partial) configuration; return a copy without nulls."""
    obj = dict(obj)
    allowed = CONFIG_FIELDS + PROFILE_FIELDS if allow_profile else CONFIG_FIELDS
    json_readers.reject_unknown(obj, allowed, name)
    values = {key: obj[key] for key in ConfigValues.__struct_fields__ if key in obj}
    settings: JsonObject = msgspec.to_builtins(_decoded(ConfigValues, values, "", SETTINGS_WORDS))
    out: JsonObject = {key: value for key, value in settings.items() if value is not None}
    for key in (*CONFIG_TEXTS, *PROFILE_FIELDS):
        text = out.get(key)
        if isinstance(text, str):  # reject_unknown refused a profile field not allowed
            limit = PROFILE_TEXT_MAX if key in PROFILE_FIELDS else CONFIG_TEXT_MAX
            json_readers.check_text(text, key, max_len=limit)
    for key in ("stt_config", "tts_config"):
        sub = json_readers.sub_object(obj, key)
        if sub is not None:
            tenant_provider_fields.check_section(key, _named(sub), sub)
            out[key] = copy.deepcopy(sub)
    llm = json_readers.sub_object(obj, "llm_config")
    if llm is not None:
        _check_llm_keys(llm, obj.get("provider"))
        if "messages" in llm and llm["messages"] is not None:
            _check_messages(llm["messages"])
        plan = llm.get(FALLBACK_PLAN)
        for index, entry in enumerate(plan if isinstance(plan, list) else []):
            if isinstance(entry, dict) and entry.get("messages") is not None:
                _check_messages(entry["messages"], f"llm_config.{FALLBACK_PLAN}[{index}]")
        out["llm_config"] = copy.deepcopy(llm)
    if obj.get("tools") is not None:
        out["tools"] = [*check_tools(obj["tools"])]
    for key, check in _PLANS.items():
        if obj.get(key) is not None:
            out[key] = check(obj[key])
    if obj.get(LANGUAGES) is not None:
        out[LANGUAGES] = _check_languages(obj[LANGUAGES])
    return out


def _named(section: JsonObject) -> str | None:
    name = section.get("provider")
    return name if isinstance(name, str) else None


def _check_llm_keys(llm: JsonObject, provider: object) -> None:
    """The keys of an ``llm_config`` (``provider_keys``): a speech-to-speech assistant's are
    the realtime session's; a partial section of an unknown kind (an override) is checked
    against every provider, the whole configuration again by ``resolve_provider``."""
    if provider in SPEECH_TO_SPEECH:
        tenant_provider_fields.check_section(tenant_provider_fields.REALTIME, str(provider), llm)
    elif provider is not None or _named(llm) is not None:
        tenant_provider_fields.check_section(tenant_provider_fields.LLM, _named(llm), llm)
    else:
        try:
            tenant_provider_fields.check_section(tenant_provider_fields.LLM, None, llm)
        except BadRequest:
            tenant_provider_fields.check_section(tenant_provider_fields.REALTIME, None, llm)


def _check_tool_filler(value: object) -> JsonObject:
    """``{"message": "One moment, please." | "", "delay_seconds": 0-10}``: what the caller
    hears while a tool runs longer than the delay (an empty message: nothing)."""
    filler = _plan(ToolFiller, value, "tool_filler", TOOL_FILLER_WORDS)
    out = _settings(filler)
    if isinstance(filler.message, str):
        out["message"] = filler.message.strip()
    return out


def _check_llm_filler(value: object) -> JsonObject:
    """``{"delay_seconds": 0-10 | null, "messages": [1-10 texts]}``: what the caller hears
    when the reply's first sentence is that late (``pipeline/speaking/filler.py``); a null delay:
    none (an override turns a saved assistant's filler off that way)."""
    filler = _plan(LlmFiller, value, LLM_FILLER, LLM_FILLER_WORDS)
    out = _settings(filler, null=("delay_seconds",))
    if isinstance(filler.messages, list):
        out["messages"] = [m.strip() for m in filler.messages]
    return out


def _check_keypad(value: object) -> JsonObject:
    """``{"enabled": true | false, "timeout_seconds": 0.5-30, "terminator": "#" | "*" | null,
    "max_digits": 1-64}``, each optional (``pipeline/hearing/keypad.py`` has the defaults); a null
    terminator: none, the entry ends on max_digits or the timeout; ``enabled`` false: the
    caller's keys are ignored."""
    return _settings(_plan(Keypad, value, KEYPAD, KEYPAD_WORDS), null=("terminator",))


# How a plan's refused setting reads (the words the API documents): what it must be, or (a
# value of its type out of its bounds) what it must be within them. The bounds are the
# types' (``domain/assistant_config.py``).
Words = Mapping[str, str | tuple[str, str]]


def _quoted(choices: tuple[str, ...]) -> str:
    return ", ".join(f'"{choice}"' for choice in choices)


TOOL_FILLER_WORDS: Words = {
    "message": f"must be a text of at most {TOOL_FILLER_MESSAGE_MAX} characters",
    "delay_seconds": "must be a number of seconds, 0-10",
}
LLM_FILLER_WORDS: Words = {
    "delay_seconds": "must be a number of seconds, {}-{}, or null (no filler)".format(
        *LLM_FILLER_DELAY
    ),
    "messages": "must be a list of 1-{} texts of at most {} characters".format(
        *LLM_FILLER_MESSAGES
    ),
}
CONSENT_WORDS: Words = {
    "mode": f"must be one of {_quoted(CONSENT_MODES)}",
    "key": f"must be one of {_quoted(CONSENT_KEYS)}",
    "message": f"must be a text of 1-{CONSENT_MESSAGE_MAX} characters",
    "timeout_seconds": "must be a number of seconds, {:g}-{:g}".format(*CONSENT_TIMEOUT),
    "on_refusal": f"must be one of {_quoted(CONSENT_REFUSALS)}",
}
# A required setting left out or null.
CONSENT_REQUIRED: Mapping[str, str] = {
    "mode": "is required",
    "message": f"must be a text of 1-{CONSENT_MESSAGE_MAX} characters",
}
PHONE_MENU_GOAL = f"must be a text of 1-{PHONE_MENU_GOAL_MAX} characters"
PHONE_MENU_WORDS: Words = {
    "goal": PHONE_MENU_GOAL,
    "max_wait_seconds": (
        "must be an integer",
        "must be between {} and {}".format(*PHONE_MENU_WAIT),
    ),
}
KNOWLEDGE_IDS = f"must list 1-{MAX_BASES_PER_ASSISTANT} knowledge base ids"
KNOWLEDGE_WORDS: Words = {
    "knowledge_base_ids": KNOWLEDGE_IDS,
    "retrieval": f"must be one of {_quoted(get_args(Retrieval))}",
    "max_chunks": (
        "must be an integer",
        f"must be between 1 and {MAX_CHUNKS_PER_SEARCH}",
    ),
}
KNOWLEDGE_REQUIRED = {"knowledge_base_ids": KNOWLEDGE_IDS}
MEMORY_WORDS: Words = {
    "recent_calls": ("must be an integer", "must be between {} and {}".format(*MEMORY_CALLS)),
}
KEYPAD_WORDS: Words = {
    "enabled": "must be true or false",
    "timeout_seconds": f"must be a number of seconds, {KEYPAD_TIMEOUT[0]}-{KEYPAD_TIMEOUT[1]}",
    "terminator": f"must be one of {_quoted(KEYPAD_TERMINATORS)}, or null (none)",
    "max_digits": (
        "must be an integer",
        f"must be between {KEYPAD_MAX_DIGITS[0]} and {KEYPAD_MAX_DIGITS[1]}",
    ),
}
SETTINGS_WORDS: Words = {
    **{key: "must be a string" for key in (*PROFILE_FIELDS, *CONFIG_TEXTS)},
    "provider": f"must be one of: {', '.join(PROVIDERS)}",
    "facts": "must map names to strings",
    **{
        key: ("must be an integer", "must be between {} and {}".format(*b))
        for key, b in LIMIT_FIELDS.items()
    },
    "media_format": f"must be one of: {', '.join(CALL_MEDIA_FORMATS)}",
    "record": "must be true or false",
    "barge_in_on_words": "must be true or false",
    "voicemail_detection": f"must be one of: {', '.join(VOICEMAIL_DETECTION)}",
    "turn_detection": f"must be one of: {', '.join(TURN_DETECTIONS)}",
    "noise_suppression": "must be true or false, or null (the node's default)",
}
LANGUAGES_WORDS: Words = {
    "": f"must be a list of 1-{LANGUAGES_MAX} languages",
    "language": 'must be a BCP 47 primary language tag such as "de" (2-3 lower-case letters)',
    "voice": "must be an object with the name of a voice of the TTS provider",
    "voice.voice": "must be a voice name of 1-64 letters, digits, '_', '.', '+' or '-'",
    "prompt": f"must be a text of 1-{LANGUAGE_TEXT_MAX} characters",
    "first_message": f"must be a text of 1-{LANGUAGE_TEXT_MAX} characters",
    "calling_codes": f"must be a list of 1-{CALLING_CODES_MAX} country calling codes "
    '(1-3 digits, such as "49")',
}
ANALYSIS_WORDS: Words = {
    "summary_prompt": "must be a string",
    "structured_data_schema": "must be a JSON object",
    "success_evaluation_rubric": "must be a string",
}
ASSISTANT_REQUEST_WORDS: Words = {
    "timeout_seconds": ("must be an integer", "must be between 1 and 20"),
}
MESSAGE_WORDS: Words = {
    "": "must be a list",
    "role": f"must be one of {MESSAGE_ROLES}",
    "content": "must be a string",
}
REDACTION_WORDS: Words = {
    "categories": f"must be a list of {', '.join(CATEGORIES)}",
    "custom_patterns": f"must be a list of at most {REDACTION_PATTERNS_MAX} patterns",
    "custom_patterns.name": (
        "must be 1-40 lower-case letters, digits or _, starting with a letter"
    ),
    "custom_patterns.regex": f"must be a text of 1-{REDACTION_PATTERN_MAX} characters",
    "model_sees": "must be " + " or ".join(f'"{sees}"' for sees in MODEL_SEES),
    "region": "must be a country code such as US",
}
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_INDEX = re.compile(r"\[(?:[0-9]+|\.\.\.)\]")  # a list's item, a mapping's value
_LAST_INDEX = re.compile(r"\[(?:[0-9]+|\.\.\.)\]$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]+)`")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`")
_NOT_OBJECT = re.compile(r"^Expected `object`, got `[a-z]+`")
_BOUND = re.compile(r"^Expected `[a-z]+` [<>]=")
P = TypeVar("P", bound=Plan)
T = TypeVar("T")


def _plan(
    kind: type[P],
    value: object,
    name: str,
    words: Words,
    required: Mapping[str, str] = MappingProxyType({}),
) -> P:
    """``value`` as the plan ``kind``, whose type states its keys and their bounds; 400 naming
    the key in ``words`` otherwise (``keypad.max_digits must be between 1 and 64``), a
    ``required`` one left out or null in its words there."""
    obj = json_readers.require_object(value, name)
    json_readers.reject_unknown(obj, kind.__struct_fields__, name)
    for key, needed in required.items():
        if obj.get(key) is None:
            raise BadRequest(f"{name}.{key} {needed}")
    return _decoded(kind, obj, name, words)


def _decoded(kind: type[T], value: object, name: str, words: Words) -> T:
    """``value`` decoded as ``kind`` (its type states its keys and bounds); a refusal is a 400
    naming where (``redaction_plan.custom_patterns[0].name``) in the ``words`` of its key (the
    path without its indexes: ``custom_patterns.name``; ``""``: the value itself)."""
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise _worded(str(exc), name, words) from None


def _worded(error: str, name: str, words: Words) -> BadRequest:
    at = _AT.search(error)
    path = at["path"] if at is not None else ""
    if (unknown := _UNKNOWN.match(error)) is not None:
        return BadRequest(f"{_where(name, path)}: unknown field(s): {unknown['field']}")
    if (missing := _MISSING.match(error)) is not None:
        path = f"{path}.{missing['field']}" if path else missing["field"]
    elif _NOT_OBJECT.match(error) is not None and path.endswith("]"):
        return BadRequest(f"{_where(name, path)} must be a JSON object")
    path = _LAST_INDEX.sub("", path)  # an item of a list of values: the list's words
    said = words.get(_INDEX.sub("", path).lstrip("."), "is invalid")
    if not isinstance(said, str):  # (of its type, within its bounds)
        said = said[1] if _BOUND.match(error) else said[0]
    return BadRequest(f"{_where(name, path)} {said}")


def _where(name: str, path: str) -> str:
    """Where ``path`` is in the value ``name`` (``""``: the configuration itself)."""
    if not name or not path or path.startswith("["):
        return f"{name}{path}"
    return f"{name}.{path}"


def _settings(plan: Plan, null: tuple[str, ...] = ()) -> JsonObject:
    """A plan's settings as set, a null one left out unless null means something (``null``:
    no terminator)."""
    built: JsonObject = msgspec.to_builtins(plan)
    return {k: v for k, v in built.items() if v is not None or k in null}


def _check_redaction_plan(value: object) -> JsonObject:
    """``{"categories": [...], "custom_patterns": [{"name", "regex"}], "model_sees":
    "redacted" | "clear", "region": "US"}``, each optional (``domain/redaction``): the plan
    ``RedactionPlan`` states; a custom pattern must be one RE2 accepts (what no schema
    states). A null setting is not set."""
    obj = json_readers.require_object(value, REDACTION_PLAN)
    settings = {key: setting for key, setting in obj.items() if setting is not None}
    plan = _plan(RedactionPlan, settings, REDACTION_PLAN, REDACTION_WORDS)
    for index, pattern in enumerate(set_or(plan.custom_patterns, [])):
        if (refusal := tenant_regex_refusal(pattern.regex)) is not None:
            where = f"{REDACTION_PLAN}.custom_patterns[{index}].regex"
            raise BadRequest(f"{where} {refusal}", error=INVALID_PATTERN)
    out = _settings(plan)
    if "categories" in out:
        out["categories"] = list(dict.fromkeys(set_or(plan.categories, [])))
    return out


def _check_consent_plan(value: object) -> JsonObject:
    """``{"mode": "announce" | "opt_out_keypad" | "opt_in_keypad", "message": text,
    "key": "0"-"9" | "*" | "#", "timeout_seconds": 1-30, "on_refusal": "no_recording" |
    "no_recording_no_transcript" | "end_call"}``: mode and message required, the rest
    optional (``calls/live/consent.py`` has the defaults)."""
    plan = _plan(ConsentPlan, value, CONSENT_PLAN, CONSENT_WORDS, CONSENT_REQUIRED)
    return _settings(plan) | {"message": plan.message.strip()}


def _check_phone_menu(value: object) -> JsonObject:
    """``{"goal": text, "max_wait_seconds": 10-3600}``: the goal required
    (``calls/live/phone_menu.py`` has the default wait)."""
    plan = _plan(PhoneMenu, value, PHONE_MENU, PHONE_MENU_WORDS, {"goal": PHONE_MENU_GOAL})
    return _settings(plan) | {"goal": plan.goal.strip()}


def _check_knowledge(value: object) -> JsonObject:
    """``{"knowledge_base_ids": [...], "retrieval": "tool" | "every_turn", "max_chunks":
    1-10}``: the ids required, each once (that the organization has them is checked where the
    configuration is saved or a call placed: ``calls/assistants/knowledge_refs.py``)."""
    plan = _plan(Knowledge, value, KNOWLEDGE, KNOWLEDGE_WORDS, KNOWLEDGE_REQUIRED)
    ids = plan.knowledge_base_ids
    if len(set(ids)) != len(ids):
        raise BadRequest(
            f"{KNOWLEDGE}.knowledge_base_ids must list each knowledge base once",
            error="Duplicate knowledge base",
        )
    return _settings(plan)


def _check_memory(value: object) -> JsonObject:
    """``{"recent_calls": 1-10}``: the caller's earlier calls given to the model
    (``calls/assistants/caller_memory.py``)."""
    return _settings(_plan(Memory, value, MEMORY, MEMORY_WORDS))


def _check_flow(value: object) -> JsonObject:
    """``{"start": name, "nodes": [...]}``: the flow ``Flow`` states, its graph checked
    (``flows.py``; docs/flows.md)."""
    flow = _decoded(Flow, json_readers.require_object(value, FLOW), FLOW, FLOW_WORDS)
    try:
        check_flow_graph(flow)
    except BadRequest as exc:  # a flow the schema lets through, refused by its graph's rules
        raise BadRequest(exc.message, error=INVALID_FLOW) from None
    built: JsonObject = msgspec.to_builtins(flow)
    return built


def _check_languages(value: object) -> list[JsonValue]:
    """``[{"language": "de", "voice": {"voice": "de"}, "prompt": text, "first_message":
    text}]``: 1-5 languages (``Language``), each listed once."""
    languages = _decoded(Languages, value, LANGUAGES, LANGUAGES_WORDS)
    tags = [entry.language for entry in languages]
    if len(set(tags)) != len(tags):
        raise BadRequest(f"{LANGUAGES} must list each language once", error="Duplicate language")
    built: list[JsonValue] = msgspec.to_builtins(languages)
    return built


def _check_analysis_plan(value: object) -> JsonObject:
    """An assistant's ``analysis_plan``: a plan (``check_analysis_plan``), or a reference to an
    analysis template of the organization, ``{"template_id": ...}`` alone (the template's plan
    replaces it when a call is placed: ``calls/assistants/analysis_templates.py``)."""
    obj = json_readers.require_object(value, "analysis_plan")
    if TEMPLATE_ID not in obj:
        return check_analysis_plan(obj, "analysis_plan")
    where = "analysis_plan (with a template_id)"
    json_readers.reject_unknown(obj, AnalysisTemplateRef.__struct_fields__, where)
    words: Words = {TEMPLATE_ID: "must be an analysis template id"}
    return {TEMPLATE_ID: _plan(AnalysisTemplateRef, obj, "analysis_plan", words).template_id}


def check_analysis_plan(value: object, where: str) -> JsonObject:
    """``{"summary_prompt", "structured_data_schema", "success_evaluation_rubric"}``, each
    optional (an assistant's plan, or an analysis template's): the plan ``AnalysisPlan``
    states, its texts within ``ANALYSIS_TEXT_MAX``; the schema must be a valid JSON Schema
    (``pipeline.analysis.post_call``) within the limits of ``domain.tenant_schemas`` (size,
    depth, growth, no regular expressions, no cycles)."""
    plan = _plan(AnalysisPlan, value, where, ANALYSIS_WORDS)
    out: JsonObject = {}
    for key, text in (
        ("summary_prompt", plan.summary_prompt),
        ("success_evaluation_rubric", plan.success_evaluation_rubric),
    ):
        if isinstance(text, str):
            out[key] = json_readers.check_text(text, key, max_len=ANALYSIS_TEXT_MAX)
    schema = json_object(plan.structured_data_schema)
    if schema is not None:
        # Bounded, no regular expressions, no cycles (domain/tenant_schemas.py), before the
        # meta-schema looks at it (it compiles a pattern).
        check_tenant_schema(schema, f"{where}.structured_data_schema")
        wrong = metaschema_error(schema)
        if wrong is not None:
            raise BadRequest(f"{where}.structured_data_schema is not a JSON Schema: {wrong}")
        out["structured_data_schema"] = copy.deepcopy(schema)
    return out


def _check_assistant_request(value: object) -> JsonObject:
    """``{"timeout_seconds": 1-20}``: inbound calls ask the organization's server first
    (``calls.assistants.request``); the plan ``AssistantRequest`` states its bounds."""
    request = _plan(AssistantRequest, value, ASSISTANT_REQUEST, ASSISTANT_REQUEST_WORDS)
    default = DEFAULT_ASSISTANT_REQUEST_TIMEOUT_SECONDS
    return {"timeout_seconds": given(request.timeout_seconds, default)}


def _check_messages(messages: object, where: str = "llm_config") -> None:
    """``llm_config.messages`` (or a fallback plan entry's): a list of ``SeedMessage``, each
    content a text (not blank, within ``CONFIG_TEXT_MAX``)."""
    name = f"{where}.messages"
    for i, item in enumerate(messages if isinstance(messages, list) else []):
        if isinstance(item, dict):  # the type ignores what it does not name: refused here
            json_readers.reject_unknown(item, SeedMessage.__struct_fields__, f"{name}[{i}]")
    for i, message in enumerate(_decoded(list[SeedMessage], messages, name, MESSAGE_WORDS)):
        json_readers.check_text(message.content, f"{name}[{i}].content", max_len=CONFIG_TEXT_MAX)


# Each plan of a configuration, and what checks it.
_PLANS: Mapping[str, Callable[[object], JsonObject]] = MappingProxyType(
    {
        "tool_filler": _check_tool_filler,
        LLM_FILLER: _check_llm_filler,
        KEYPAD: _check_keypad,
        REDACTION_PLAN: _check_redaction_plan,
        CONSENT_PLAN: _check_consent_plan,
        PHONE_MENU: _check_phone_menu,
        KNOWLEDGE: _check_knowledge,
        MEMORY: _check_memory,
        FLOW: _check_flow,
        "analysis_plan": _check_analysis_plan,
        ASSISTANT_REQUEST: _check_assistant_request,
    }
)


def deep_merge(base: JsonObject, override: JsonObject) -> JsonObject:
    """Objects merge key by key; anything else (lists included) replaces the base value.

    On JSON, not on the typed configuration: the saved side is a stored section cut to the
    list (``tenant_sections``), which may hold keys from before it; the override's provider
    keys come masked and are restored on the JSON (``restore_masked``); a key the override
    leaves out and one it sends as null differ here, which a typed merge would have to carry
    as ``UNSET`` through every section's fields."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        below, over = json_object(merged.get(key)), json_object(value)
        if below is not None and over is not None:
            merged[key] = deep_merge(below, over)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve_provider(
    config: JsonObject, speech: SpeechSettings, egress: EgressPolicy | None = None
) -> JsonObject:
    """Apply the provider rules; fill what the sections leave out (``UnresolvableConfig`` on
    contradictions); with ``egress``, also on a URL the operator's policy refuses
    (``calls.assistants.urls``; a tool's is ``URL refused``). Each a 400 naming the key.

    On JSON: its input is the merged configuration (``deep_merge``, with tool and analysis
    templates expanded into it: ``expand_tool_templates``), and it fills in the operator's
    engines and a cloud LLM's default model key by key; its result is typed once, for the
    call's snapshot (``config_of``)."""
    try:
        return _resolve_provider(config, speech, egress)
    except BadRequest as exc:
        if exc.error != BadRequest.error:  # a refusal with a title of its own
            raise
        raise UnresolvableConfig(exc.message) from None


def _resolve_provider(
    config: JsonObject, speech: SpeechSettings, egress: EgressPolicy | None
) -> JsonObject:
    provider = config.get("provider", "offline")
    resolved = dict(config, provider=provider)
    has_stt, has_tts = "stt_config" in config, "tts_config" in config
    tools = resolved.get("tools")
    named = [t.get("name") for t in tools if isinstance(t, dict)] if isinstance(tools, list) else []
    if FLOW in resolved and NEXT_STEP in named:  # the model would be offered two of that name
        raise BadRequest(
            f"tools: {NEXT_STEP} is the flow's own tool; give yours another name",
            error="Duplicate tool name",
        )
    if provider in SPEECH_TO_SPEECH:
        if FLOW in resolved:  # a session answers by itself: no node's tool between turns
            raise BadRequest(f"{FLOW} needs a pipeline assistant, not provider {provider}")
        if PHONE_MENU in resolved:  # a session speaks for itself and its silence watch runs
            # on the clock: a menu's hold would end the call (docs/phone-menus.md)
            raise BadRequest(f"{PHONE_MENU} needs a pipeline assistant, not provider {provider}")
        knowledge = json_object(resolved.get(KNOWLEDGE)) or {}
        if knowledge.get("retrieval") == EVERY_TURN:  # a session hears and answers by itself
            raise BadRequest(
                f"{KNOWLEDGE}.retrieval every_turn needs a pipeline assistant, not provider "
                f"{provider} (use tool)"
            )
        _resolve_speech_to_speech(str(provider), resolved, speech)
    else:
        if provider in NEEDS_STT_AND_TTS and not (has_stt and has_tts):
            raise BadRequest(f"provider {provider} requires both stt_config and tts_config")
        defaults = {"stt_config": speech.stt, "tts_config": speech.tts, "llm_config": speech.llm}
        for key, engine in defaults.items():
            part = dict(json_object(resolved.get(key)) or {})
            if key == "llm_config":
                part = llm_section(provider, part, engine)
            resolved[key] = _resolve_section(key, part, engine, speech)
        _check_language_voices(resolved, speech)
    if egress is not None:
        check_tenant_urls(resolved, egress)
    return resolved


def _resolve_speech_to_speech(provider: str, resolved: JsonObject, speech: SpeechSettings) -> None:
    """A speech-to-speech configuration: its session (``realtime_section``), no LLM filler,
    and the pipeline it goes on with when the session fails (``llm_config.fallback_plan``,
    completed by ``stt_config`` and ``tts_config``, which only that pipeline takes)."""
    llm = resolved.get("llm_config")
    plan = llm.get(FALLBACK_PLAN) if isinstance(llm, dict) else None
    if ("stt_config" in resolved or "tts_config" in resolved) and plan is None:
        raise BadRequest(
            f"provider {provider} handles speech itself: omit stt_config and tts_config "
            f"(they only complete the pipeline of llm_config.{FALLBACK_PLAN})"
        )
    filler = resolved.get(LLM_FILLER)  # on unless its delay is null
    if isinstance(filler, dict) and filler.get("delay_seconds", True) is not None:
        raise BadRequest(
            f"provider {provider} speaks for itself: omit {LLM_FILLER} "
            "(dead_air_seconds covers a stalled model)"
        )
    if isinstance(llm, dict):
        resolved["llm_config"] = realtime_section(llm, speech.tts, speech)
    for key, engine in (("stt_config", speech.stt), ("tts_config", speech.tts)):
        part = json_object(resolved.get(key))
        if part is not None:  # left out: the operator's STT, the session's say_voice
            resolved[key] = _resolve_section(key, dict(part), engine, speech)


def _resolve_section(key: str, part: JsonObject, engine: str, speech: SpeechSettings) -> JsonObject:
    """A pipeline's section: its provider (``engine`` when it names none) one of the registry,
    its keys the provider's, its voice one the node has, each entry of its fallback plan
    resolved as the section is (``_plan_entry``)."""
    part.setdefault("provider", engine)
    name = part["provider"]
    if not isinstance(name, str) or name not in _PROVIDER_NAMES[key]():
        raise BadRequest(f"{key}.provider {name!r} is not one of {_names(key)}")
    tenant_provider_fields.check_section(key, name, part)
    if key == "tts_config":
        check_tts_voice(name, part, key, speech)
    if key == "stt_config" and name in WHISPER_NAMES:
        _check_whisper(part)
    _resolve_plan(key, part, speech)
    return part


def _resolve_plan(key: str, section: JsonObject, speech: SpeechSettings) -> None:
    """Each entry of ``section``'s fallback plan (a list of ``key`` sections), resolved."""
    plan = section.get(FALLBACK_PLAN)
    if isinstance(plan, list):
        section[FALLBACK_PLAN] = [
            _plan_entry(key, json_object(entry) or {}, f"{key}.{FALLBACK_PLAN}[{i}]", speech)
            for i, entry in enumerate(plan)
        ]


def _plan_entry(key: str, entry: JsonObject, where: str, speech: SpeechSettings) -> JsonObject:
    """One entry of a section's fallback plan, as the section itself is resolved: a provider
    of the registry, a cloud LLM's default model, a voice the engine has."""
    part = dict(entry)
    name = part.get("provider")
    if not isinstance(name, str) or name not in _PROVIDER_NAMES[key]():
        raise BadRequest(f"{where}.provider {name!r} is not one of {_names(key)}")
    if key == "llm_config" and name in DEFAULT_LLM_MODELS and not part.get("model"):
        part["model"] = DEFAULT_LLM_MODELS[name]
    if key == "tts_config":
        check_tts_voice(name, part, where, speech)
    if key == "stt_config" and name in WHISPER_NAMES:
        _check_whisper(part)
    return part


def operator_plan(key: str, speech: SpeechSettings) -> list[JsonObject]:
    """The operator's default fallback plan of the engine of ``key`` (``llm_config``...:
    ``[speech.fallback_plans]``), each entry resolved and checked as an organization's is (a
    provider of the registry, its keys and their bounds, a voice the node has, a cloud LLM's
    default model); a ``BadRequest`` names the entry (``llm_config.fallback_plan[1].model``).
    Its URLs and keys are the operator's: no egress rule applies to them."""
    plan = []
    for index, entry in enumerate(speech.fallback_plans.engines()[key]):
        where = f"{key}.{FALLBACK_PLAN}[{index}]"
        resolved = _plan_entry(key, entry, where, speech)
        tenant_provider_fields.check_section(key, str(resolved["provider"]), entry, where)
        plan.append(resolved)
    return plan


def tenant_sections(config: Mapping[str, JsonValue], speech: SpeechSettings) -> JsonObject:
    """``config`` with each provider section cut to what an organization may set: a stored
    configuration may predate the list (``domain/tenant_provider_fields.py``), and what it holds
    beyond it is ignored, never used (logged by key, never by value)."""
    out = dict(config)
    top = config.get("provider")
    sections = {
        "stt_config": (tenant_provider_fields.STT, speech.stt),
        "tts_config": (tenant_provider_fields.TTS, speech.tts),
    }
    if top in SPEECH_TO_SPEECH:  # its STT and TTS: the pipeline of its fallback plan
        sections["llm_config"] = (tenant_provider_fields.REALTIME, str(top))
    else:
        llm_default = str(top) if top in NEEDS_STT_AND_TTS else speech.llm
        sections["llm_config"] = (tenant_provider_fields.LLM, llm_default)
    for key, (kind, default) in sections.items():
        value = json_object(config.get(key))
        if value is None:
            continue
        name = (
            value.get("provider", default) if kind != tenant_provider_fields.REALTIME else default
        )
        kept = tenant_provider_fields.tenant_part(kind, str(name), value)
        say = json_object(value.get(SAY_VOICE))
        if kind == tenant_provider_fields.REALTIME and say is not None:
            say_name = str(say.get("provider", speech.tts))
            kept[SAY_VOICE] = tenant_provider_fields.tenant_part(
                tenant_provider_fields.TTS, say_name, say
            )
        dropped = sorted(set(value) - set(kept))
        if dropped:
            log.warning("%s: ignoring %s (not an assistant's setting)", key, ", ".join(dropped))
        out[key] = kept
    return out


def _check_whisper(section: JsonObject) -> None:
    """The offline STT's own keys (``encoder_context``, ``streaming``...): 400 naming the key."""
    from voicedock.pipeline.providers.whisper.stt import WhisperStt

    try:
        WhisperStt.check_config(decoded(SttConfig, section, "stt_config"))
    except (ProviderConfigError, TypeError, ValueError) as exc:
        message = str(exc) if isinstance(exc, ProviderConfigError) else "stt_config is invalid"
        raise BadRequest(message) from None


def llm_section(provider: object, section: JsonObject, default_engine: str) -> JsonObject:
    """The LLM section of a pipeline assistant: ``openai``/``mistral`` choose the LLM (a
    section naming another one is refused); a known cloud LLM gets its default model."""
    part = dict(section)
    if provider in NEEDS_STT_AND_TTS:
        named = part.setdefault("provider", provider)
        if named != provider:
            raise BadRequest(
                f"llm_config.provider {named!r} contradicts provider {provider!r}: "
                "omit llm_config.provider or make them the same"
            )
    name = part.get("provider", default_engine)
    if name in DEFAULT_LLM_MODELS and not part.get("model"):
        part["model"] = DEFAULT_LLM_MODELS[name]
    return part


def realtime_section(
    section: JsonObject, default_tts: str, speech: SpeechSettings | None = None
) -> JsonObject:
    """The ``llm_config`` of a speech-to-speech assistant: ``voice`` (the model's own, the
    provider knows its list) must be a name; ``say_voice`` chooses voicedock's TTS for what is
    said verbatim and gets the operator's TTS engine when it names none (400 when unknown)."""
    part = dict(section)
    voice = part.get("voice")
    if voice is not None and not (isinstance(voice, str) and voice.strip()):
        raise BadRequest("llm_config.voice must be a voice name")
    tenant_provider_fields.check_section(tenant_provider_fields.REALTIME, "xai_realtime", part)
    _resolve_plan("llm_config", part, speech or SpeechSettings())
    say = part.get(SAY_VOICE)
    if say is None:
        part.pop(SAY_VOICE, None)
        return part
    if not isinstance(say, dict):
        raise BadRequest(f"llm_config.{SAY_VOICE} must be an object")
    say = dict(say)
    name = say.setdefault("provider", default_tts)
    if not isinstance(name, str) or name not in tts_registry.names():
        raise BadRequest(
            f"llm_config.{SAY_VOICE}.provider {name!r} is not one of {_names('tts_config')}"
        )
    tenant_provider_fields.check_section(
        tenant_provider_fields.TTS, name, say, f"llm_config.{SAY_VOICE}"
    )
    check_tts_voice(name, say, f"llm_config.{SAY_VOICE}", speech or SpeechSettings())
    part[SAY_VOICE] = say
    return part


def check_tts_voice(
    provider: str, section: Mapping[str, JsonValue], name: str, speech: SpeechSettings
) -> None:
    """Unless ``section`` names a voice this node speaks with ``provider`` (``GET /voices``),
    ``UnresolvableConfig`` (400) naming ``<name>.voice``: the schema cannot know the node's
    voices. The voice is looked up in the node's list, never used as a path. ElevenLabs
    voices are per account: only their presence is checked."""
    voice = section.get("voice")
    if voice is not None and not isinstance(voice, str):
        raise BadRequest(f"{name}.voice must be a string")
    if provider == "elevenlabs" and not (voice or section.get("voice_id")):
        raise BadRequest(f"{name} needs the ElevenLabs voice_id")
    if voice is None:
        return
    engine = _tts_engine(provider)
    if engine is None:
        return
    base, plus, variant = voice.partition("+")  # espeak-ng's "en-us+f3": a voice's variant
    known = voice_names(speech, engine)
    if engine == ESPEAK and plus and variant.isalnum():
        voice = base
    if voice not in known:
        raise UnresolvableConfig(
            f"{name}.voice {voice!r} is not one of this node's {engine} voices "
            "(GET /voices lists them)"
        )


def _tts_engine(provider: str) -> str | None:
    """The node's engine a ``tts_config.provider`` speaks with, as a call creates it
    (``pipeline/providers/registry.py``: ``offline`` is Piper where its voice is installed,
    else espeak-ng); None: a provider whose voices the node does not list."""
    if provider == "offline":
        from voicedock.pipeline.providers.piper_tts import piper_available

        return PIPER if piper_available() else ESPEAK
    return {"piper": PIPER, "espeak-ng": ESPEAK, "espeak_ng": ESPEAK, "openai": OPENAI}.get(
        provider
    )


def _check_language_voices(resolved: JsonObject, speech: SpeechSettings) -> None:
    """Each of a pipeline's ``languages`` has a voice its TTS speaks, as a call builds it
    (``calls/live/providers.py``: the resolved ``tts_config`` with the language's voice, or
    the assistant's own voice without one): a voice the provider has on this node
    (``check_tts_voice``). Piper speaks the one model of the node whatever voice is named:
    with it a language names no voice and is the language of that model (English for the
    packaged one). ``UnresolvableConfig`` (400) naming ``languages[<i>].voice``."""
    tts = json_object(resolved.get("tts_config"))
    if resolved.get(LANGUAGES) is None or tts is None:
        return
    provider = str(tts.get("provider"))
    engine = _tts_engine(provider)
    languages = _decoded(Languages, resolved[LANGUAGES], LANGUAGES, LANGUAGES_WORDS)
    for index, entry in enumerate(languages):
        where = f"{LANGUAGES}[{index}].voice"
        if engine == PIPER:
            _check_piper_language(entry, where, provider, speech)
        elif entry.voice is not UNSET:
            check_tts_voice(provider, {"voice": entry.voice.voice}, where, speech)


def _check_piper_language(
    entry: Language, where: str, provider: str, speech: SpeechSettings
) -> None:
    """A language a Piper assistant speaks: no voice of its own, and the language of the
    node's Piper voice (``[speech] piper_model_path``, else the packaged English one)."""
    voices = piper_voices(speech.piper_model_path)
    name = voices[0].voice if voices else "the packaged voice"
    speaks = voices[0].language.partition("-")[0].lower() if voices else "en"
    other = f"use a TTS provider with a {entry.language} voice, e.g. espeak-ng"
    engine = repr(provider) if provider == PIPER else f"{provider!r} (Piper on this node)"
    if entry.voice is not UNSET:
        raise UnresolvableConfig(
            f"{where} {entry.voice.voice!r} cannot be spoken with tts_config.provider {engine}: "
            f"Piper speaks this node's one voice ({name}, {speaks}) whatever voice is named; "
            f"leave the voice out for {speaks}, or {other}"
        )
    if speaks not in (entry.language, MULTILINGUAL):
        raise UnresolvableConfig(
            f"{where}: {entry.language!r} has no voice with tts_config.provider {engine}: "
            f"this node's Piper voice ({name}) speaks {speaks} and would read the "
            f"{entry.language} replies; {other}"
        )


def _names(key: str) -> str:
    return ", ".join(_PROVIDER_NAMES[key]())
