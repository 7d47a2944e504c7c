"""What an organization may set in an assistant's provider sections: the one explicit list.

An assistant's ``stt_config``, ``tts_config`` and ``llm_config`` (and, for a speech-to-speech
assistant, ``llm_config`` with its ``say_voice``) are tenant input. Each provider gets the keys
below and nothing else, every value bounded: language, voice, model names, prompts, timing
values, the organization's own ``api_key`` (bring your own key) and the provider's
``base_url``/``url`` (checked against the operator's egress rules where connections are made).

Everything that touches the host (model files and directories, cache directories, devices,
compute types, threads, synthesis sample rates: the audio is resampled to the call's format
anyway) is the operator's, set in the ``[speech]`` section of the configuration file
(``OPERATOR_KEYS``). A tenant naming such a key, or any key the list does not know, gets a
``400`` naming it (``check_section``). Where a stored configuration reaches the providers
(``calls/live/providers.py``) the same list filters it (``tenant_part``), so a configuration
saved before a key was refused cannot use it either.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.domain.assistant_config import SeedMessage
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.provider_urls import URL_PATTERN, url_problem
from voicedock.domain.vocabulary import Keyterms, Pronunciations
from voicedock.errors import BadRequest
from voicedock.validation import NOT_BLANK_LINE_PATTERN, NOT_BLANK_PATTERN, has_control_chars

STT = "stt_config"
TTS = "tts_config"
LLM = "llm_config"
REALTIME = "realtime"  # the llm_config of a speech-to-speech (xai_realtime) assistant
_KIND_NAMES = {STT: "STT", TTS: "TTS", LLM: "LLM", REALTIME: "speech-to-speech"}

# Host settings: only the operator's [speech] section sets them (docs/speech.md).
OPERATOR_KEYS = frozenset(
    {
        "model_path",
        "cache_dir",
        "device",
        "compute_type",
        "cpu_threads",
        "num_workers",
        "sample_rate",
        "executable",
    }
)


# A rule checks one value (``where`` names it in the 400) or raises BadRequest; its ``schema``
# says the same in JSON Schema (the OpenAPI document's provider sections), its ``kind`` as the
# type a request's model decodes the value into (``SECTIONS``): each made from the one
# statement of the bounds, the arguments of the rule's maker below.
Check = Callable[[object, str], None]


@dataclass(frozen=True, slots=True)
class Rule:
    check: Check
    schema: JsonObject
    kind: Any = Any

    def __call__(self, value: object, where: str) -> None:
        self.check(value, where)


def _or_null(schema: JsonObject, nullable: bool) -> JsonObject:
    return {"anyOf": [schema, {"type": "null"}]} if nullable else schema


def _or_none(kind: Any, nullable: bool) -> Any:
    return kind | None if nullable else kind


def _struct(name: str, keys: Mapping[str, Rule]) -> type[msgspec.Struct]:
    """The type of an object holding some of ``keys``, each as its rule's kind, and no other
    key; a key left out is ``UNSET``."""
    fields = [(key, rule.kind | UnsetType, UNSET) for key, rule in keys.items()]
    return msgspec.defstruct(
        name,
        fields,
        kw_only=True,
        frozen=True,
        forbid_unknown_fields=True,
        module=__name__,
    )


def text(max_len: int, *, multiline: bool = False, nullable: bool = False) -> Rule:
    def check(value: object, where: str) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str) or not value.strip():
            raise BadRequest(f"{where} must be a non-empty string")
        if len(value) > max_len:
            raise BadRequest(f"{where} must be at most {max_len} characters")
        if "\x00" in value or (not multiline and has_control_chars(value)):
            raise BadRequest(f"{where} must not contain control characters")

    pattern = NOT_BLANK_PATTERN if multiline else NOT_BLANK_LINE_PATTERN
    schema: JsonObject = {
        "type": "string",
        "minLength": 1,
        "maxLength": max_len,
        "pattern": pattern,
    }
    kind = Annotated[str, Meta(min_length=1, max_length=max_len, pattern=pattern)]
    return Rule(check, _or_null(schema, nullable), _or_none(kind, nullable))


def number(low: float, high: float, *, integer: bool = False, nullable: bool = False) -> Rule:
    def check(value: object, where: str) -> None:
        if value is None and nullable:
            return
        kinds = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise BadRequest(f"{where} must be {'an integer' if integer else 'a number'}")
        if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
            raise BadRequest(f"{where} must be between {low} and {high}")

    schema: JsonObject = {
        "type": "integer" if integer else "number",
        "minimum": low,
        "maximum": high,
    }
    # A number, sent whole or not, decodes as a float (``2``: ``2.0``), within the bounds.
    numeric: Any = int if integer else float
    kind = Annotated[numeric, Meta(ge=low, le=high)]
    return Rule(check, _or_null(schema, nullable), _or_none(kind, nullable))


def choice(*values: str | int) -> Rule:
    def check(value: object, where: str) -> None:
        if isinstance(value, bool) or value not in values:
            raise BadRequest(f"{where} must be one of: {', '.join(map(str, values))}")

    return Rule(check, {"enum": list(values)}, Literal.__getitem__(values))


def _flag(value: object, where: str) -> None:
    if not isinstance(value, bool):
        raise BadRequest(f"{where} must be true or false")


flag = Rule(_flag, {"type": "boolean"}, bool)


def _url(value: object, where: str) -> None:
    """A provider URL: scheme, host, port and path (``domain/provider_urls.py``); which hosts
    and paths it may name is the egress guard's decision."""
    text(2_000)(value, where)
    assert isinstance(value, str)
    problem = url_problem(value)
    if problem is not None:
        raise BadRequest(f"{where}: {problem}")


url = Rule(
    _url,
    {
        "type": "string",
        "maxLength": 2_000,
        "pattern": URL_PATTERN,
        "description": "scheme://host[:port][/path]: no credentials, query or fragment; on a "
        "host the operator's egress policy allows, with the operator's path on its own hosts "
        "(else 400).",
    },
    Annotated[str, Meta(max_length=2_000, pattern=URL_PATTERN)],
)


def obj(name: str, keys: Mapping[str, Rule]) -> Rule:
    """An object of ``keys`` and no other (``name``: its type's)."""

    def check(value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise BadRequest(f"{where} must be an object")
        for key, item in value.items():
            rule = keys.get(key)
            if rule is None:
                raise BadRequest(f"{where}.{key} is not a known setting")
            rule(item, f"{where}.{key}")

    schema: JsonObject = {
        "type": "object",
        "properties": {key: rule.schema for key, rule in keys.items()},
        "additionalProperties": False,
    }
    return Rule(check, schema, _struct(name, keys))


def text_map(max_entries: int, max_len: int) -> Rule:
    def check(value: object, where: str) -> None:
        if not isinstance(value, dict) or len(value) > max_entries:
            raise BadRequest(f"{where} must map at most {max_entries} names to texts")
        for key, item in value.items():
            if len(key) > 200:
                raise BadRequest(f"{where}: names of at most 200 characters")
            text(max_len, multiline=True)(item, f"{where}.{key}")

    item = text(max_len, multiline=True)
    schema: JsonObject = {
        "type": "object",
        "maxProperties": max_entries,
        "propertyNames": {"maxLength": 200},
        "additionalProperties": item.schema,
    }
    names = Annotated[str, Meta(max_length=200)]
    texts: Any = dict.__class_getitem__((names, item.kind))
    return Rule(check, schema, Annotated[texts, Meta(max_length=max_entries)])


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")


def typed(kind: object) -> Rule:
    """A value that is ``kind`` (a domain type with its bounds), its schema msgspec's."""

    def check(value: object, where: str) -> None:
        try:
            msgspec.convert(value, kind, strict=True)
        except msgspec.ValidationError as exc:
            message = str(exc)
            found = _AT.search(message)
            if found is None:
                raise BadRequest(f"{where}: {message}") from None
            raise BadRequest(f"{where}{found['path']}: {message[: found.start()]}") from None

    schema = msgspec.json.schema(kind)
    defs = schema.pop("$defs", {})
    return Rule(check, _inlined(schema, defs), kind)


def _inlined(schema: JsonValue, defs: Mapping[str, JsonValue]) -> JsonObject:
    """``schema`` with its ``$ref``s to ``defs`` replaced by what they name."""

    def walk(node: JsonValue) -> JsonValue:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            named = walk(defs[ref.removeprefix("#/$defs/")])
            assert isinstance(named, dict)
            beside = {key: walk(value) for key, value in node.items() if key != "$ref"}
            return {**named, **beside}  # what the reference's place adds (a rule over it)
        return {key: walk(value) for key, value in node.items()}

    inlined = walk(schema)
    assert isinstance(inlined, dict)
    return inlined


def _delegated(value: object, where: str) -> None:
    """Checked by the assistant configuration itself (``llm_config.messages``, ``say_voice``)."""


delegated = Rule(_delegated, {})


MODEL = text(200)
LANGUAGE = text(35, nullable=True)  # a BCP 47 tag (or null: detect, for Whisper)
VOICE = text(200)
PROMPT = text(4_000, multiline=True)
TIMEOUTS: dict[str, Rule] = {
    "connect_timeout_s": number(0.5, 30),
    "read_timeout_s": number(1, 120),
    "total_timeout_s": number(1, 600, nullable=True),
}
# The name of one of the organization's stored provider keys (``/provider-keys``).
KEY_NAME_MAX = 64
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _key_ref(value: object, where: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(KEY_NAME_PATTERN, value):
        raise BadRequest(
            f"{where} must name a provider key: 1 to {KEY_NAME_MAX} letters, digits, '.', '_', '-'"
        )


API_KEY_REF = "api_key_ref"
key_ref = Rule(
    _key_ref,
    {
        "type": "string",
        "pattern": KEY_NAME_PATTERN,
        "description": "The name of one of the organization's provider keys (/provider-keys): "
        "its key is used instead of api_key (422 when it names none of them). Where the "
        'operator requires them ([byok] mode = "required") every cloud engine a call reaches '
        "names one, a section left to the operator's cloud engine included (else 422).",
    },
    Annotated[str, Meta(pattern=KEY_NAME_PATTERN)],
)
# The organization's own provider account (bring your own key) and endpoint.
CLOUD: dict[str, Rule] = {
    "api_key": text(500),
    API_KEY_REF: key_ref,
    "base_url": url,
    **TIMEOUTS,
}
PROVIDER_NAME = text(100)
_PROVIDER: dict[str, Rule] = {"provider": PROVIDER_NAME}
# Every recognizer takes keyterms, every voice a pronunciation dictionary (docs/speech.md).
_HEARS: dict[str, Rule] = {**_PROVIDER, "keyterms": typed(Keyterms)}
_SAYS: dict[str, Rule] = {**_PROVIDER, "pronunciations": typed(Pronunciations)}

_WHISPER: dict[str, Rule] = {
    **_HEARS,
    "language": LANGUAGE,
    "beam_size": number(1, 5, integer=True),
    "encoder_context": choice("auto", "full"),
    "streaming": flag,
}
_PIPER: dict[str, Rule] = {**_SAYS, "voice": VOICE, "length_scale": number(0.5, 2.0)}
_ESPEAK: dict[str, Rule] = {**_SAYS, "voice": VOICE, "words_per_minute": number(80, 450)}
_RULE_BASED: dict[str, Rule] = {
    **_PROVIDER,
    "facts": text_map(100, 2_000),
    "greeting": text(2_000, multiline=True),
    "closing": text(2_000, multiline=True),
    "fallback": text(2_000, multiline=True),
    "messages": delegated,
}
_CHAT: dict[str, Rule] = {
    **_PROVIDER,
    **CLOUD,
    "model": MODEL,
    "temperature": number(0, 2),
    "top_p": number(0, 1),
    "max_tokens": number(1, 32_768, integer=True),
    "messages": delegated,
}

FALLBACK_PLAN = "fallback_plan"
FALLBACK_PLAN_MAX = 3


def _plan(section: str, description: str | None = None) -> Rule:
    """A section's ``fallback_plan``: up to ``FALLBACK_PLAN_MAX`` sections of the kind
    ``section``, tried in order when the one before fails (``pipeline/fallback_plans/``), each
    naming its provider and checked as such a section is; an entry has no plan of its own."""

    def check(value: object, where: str) -> None:
        if not isinstance(value, list) or not 1 <= len(value) <= FALLBACK_PLAN_MAX:
            raise BadRequest(f"{where} must be a list of 1 to {FALLBACK_PLAN_MAX} sections")
        for index, entry in enumerate(value):
            at = f"{where}[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("provider"), str):
                raise BadRequest(f"{at} must be a section naming its provider")
            if FALLBACK_PLAN in entry:
                raise BadRequest(f"{at}.{FALLBACK_PLAN}: a fallback entry has no plan of its own")
            check_section(section, entry["provider"], entry, at)

    schema: JsonObject = {
        "type": "array",
        "minItems": 1,
        "maxItems": FALLBACK_PLAN_MAX,
        "items": {"type": "object", "required": ["provider"]},
        "description": description
        or f"What takes over, in order, when this {_KIND_NAMES[section]} fails within a turn: "
        "sections of the same kind, each naming its provider and checked as this one (an "
        "entry has no plan of its own).",
    }
    # Its entries' keys follow the provider each names: ``check_section`` checks them.
    entries = list[dict[str, Any]]
    kind = Annotated[entries, Meta(min_length=1, max_length=FALLBACK_PLAN_MAX)]
    return Rule(check, schema, kind)


# A speech-to-speech session's plan: the pipeline's LLM sections (``PLAN_KIND``).
_REALTIME_PLAN = _plan(
    LLM,
    "The pipeline a call goes on with when its speech-to-speech session fails (refused, "
    "dropped, a server error, no answer in time): LLM sections, each naming its provider and "
    "checked as a pipeline assistant's llm_config (the first one answers, the next take over "
    "as a fallback plan's do; an entry has no plan of its own). stt_config and tts_config "
    "complete the pipeline (left out: the operator's STT, and the voice of say_voice).",
)


def _with_plan(section: str, providers: dict[str, dict[str, Rule]]) -> dict[str, dict[str, Rule]]:
    plan = _plan(section)
    return {name: {**rules, FALLBACK_PLAN: plan} for name, rules in providers.items()}


# (section, provider name) → the keys an organization may set, each with its rule.
TENANT_KEYS: dict[str, dict[str, dict[str, Rule]]] = {
    STT: _with_plan(
        STT,
        {
            **dict.fromkeys(("offline", "faster-whisper", "faster_whisper"), _WHISPER),
            "openai": {
                **_HEARS,
                **CLOUD,
                "model": MODEL,
                "language": LANGUAGE,
                "prompt": PROMPT,
            },
            "deepgram": {
                **_HEARS,
                **CLOUD,
                "model": MODEL,
                "language": LANGUAGE,
                "endpointing_ms": number(10, 5_000, integer=True, nullable=True),
                "interim_results": flag,
                "smart_format": flag,
            },
        },
    ),
    TTS: _with_plan(
        TTS,
        {
            "offline": {**_PIPER, **_ESPEAK},  # Piper when installed, else espeak-ng
            "piper": _PIPER,
            **dict.fromkeys(("espeak-ng", "espeak_ng"), _ESPEAK),
            "openai": {
                **_SAYS,
                **CLOUD,
                "model": MODEL,
                "voice": VOICE,
                "instructions": PROMPT,
                "speed": number(0.25, 4.0),
            },
            "elevenlabs": {
                **_SAYS,
                **CLOUD,
                "voice": VOICE,
                "voice_id": VOICE,
                "model": MODEL,
                "model_id": MODEL,
                "language_code": LANGUAGE,
                # The output formats ElevenLabs streams (resampled to the call's rate).
                "sample_rate": choice(8000, 16000, 22050, 24000, 44100, 48000),
                "voice_settings": obj(
                    "VoiceSettingsSection",
                    {
                        "stability": number(0, 1),
                        "similarity_boost": number(0, 1),
                        "style": number(0, 1),
                        "use_speaker_boost": flag,
                        "speed": number(0.7, 1.2),
                    },
                ),
            },
        },
    ),
    LLM: _with_plan(
        LLM,
        {
            **dict.fromkeys(("offline", "rule-based", "rule_based"), _RULE_BASED),
            **dict.fromkeys(("openai", "mistral", "xai", "ollama", "openai-compatible"), _CHAT),
        },
    ),
    REALTIME: {
        "xai_realtime": {
            **_PROVIDER,
            "api_key": text(500),
            API_KEY_REF: key_ref,
            "url": url,
            **TIMEOUTS,
            "model": MODEL,
            "voice": VOICE,
            "instructions": text(20_000, multiline=True),
            "messages": delegated,
            "say_voice": delegated,
            FALLBACK_PLAN: _REALTIME_PLAN,
        }
    },
}
# The kind of section a section's fallback_plan lists: its own, but a speech-to-speech
# session's, which lists the LLMs of the pipeline that takes over.
PLAN_KIND = {STT: STT, TTS: TTS, LLM: LLM, REALTIME: LLM}


def cloud_providers() -> frozenset[str]:
    """The providers whose sections take an API key: those a provider key can be for."""
    return frozenset(
        name for keys in TENANT_KEYS.values() for name, rules in keys.items() if "api_key" in rules
    )


def any_provider_keys(section: str) -> dict[str, Rule]:
    """The keys some provider of ``section`` takes, host settings aside: what a partial
    section (no provider named yet) may hold, and all an engine this list does not know (one
    an operator's plugin registers) is ever given."""
    return {key: rule for key, rule in _keys_of(section).items() if key not in OPERATOR_KEYS}


def _keys_of(*sections: str) -> dict[str, Rule]:
    """Every key some provider of ``sections`` takes, a host setting one provider takes as its
    own included (ElevenLabs' ``sample_rate``, its output format): which provider takes which
    is ``check_section``'s."""
    keys: dict[str, Rule] = {}
    for section in sections:
        for rules in TENANT_KEYS[section].values():
            keys.update(rules)
    return keys


def _typed(rule: Rule, kind: Any) -> Rule:
    """``rule`` decoded as ``kind`` (a delegated key: a type of the configuration's own)."""
    return Rule(rule.check, rule.schema, kind)


class SentMessage(SeedMessage, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A message that seeds the conversation (a system instruction, or an earlier turn), as it
    is sent: role and content, no other key."""

    # (The stored configuration reads its messages as SeedMessage, which ignores other keys:
    # what was saved before this was refused stays readable.)


def _plan_entry(name: str, section: str) -> type[msgspec.Struct]:
    """An entry of a ``section``'s fallback plan: a section of that kind with no plan."""
    keys = _keys_of(section)
    del keys[FALLBACK_PLAN]
    if "messages" in keys:
        keys["messages"] = _typed(keys["messages"], list[SentMessage] | None)
    return _struct(name, keys)


def _section_type(
    name: str, doc: str, *sections: str, extra: Mapping[str, Any] | None = None
) -> type[msgspec.Struct]:
    """A section as a request sends it: the keys some provider of ``sections`` takes, each
    within its rule's bounds, its fallback plan's entries sections of the kind the plan lists
    (``PLAN_KIND``), ``extra`` the types of the keys the configuration checks itself. Which of
    the keys the provider it names takes is ``check_section``'s (a provider may be left out, or
    be one an operator's plugin registers)."""
    keys = _keys_of(*sections)
    entry = _plan_entry(f"{name}PlanEntry", PLAN_KIND[sections[0]])
    described = Meta(
        min_length=1,
        max_length=FALLBACK_PLAN_MAX,
        description=str(any_provider_keys(sections[0])[FALLBACK_PLAN].schema["description"]),
    )
    plan = Annotated[list[entry], described]  # type: ignore[valid-type]
    keys[FALLBACK_PLAN] = _typed(keys[FALLBACK_PLAN], plan)
    for key, kind in (extra or {}).items():
        keys[key] = _typed(keys[key], kind)
    section = _struct(name, keys)
    section.__doc__ = doc
    return section


# The sections' types, as a request's model decodes them: an STT's, a TTS's, and an
# llm_config, a pipeline's LLM or (provider xai_realtime) a realtime session's, which only the
# configuration's provider tells apart. An STT's and a TTS's are named as the API documents
# them per provider (``SttConfig``, ``TtsConfig``: api/models/provider_sections.py).
SttSection = _section_type("SttConfig", "An STT section.", STT)
TtsSection = _section_type("TtsConfig", "A TTS section.", TTS)
LlmSection = _section_type(
    "LlmSection",
    "The LLM's section (per provider, as stt_config), or with provider xai_realtime the "
    "realtime session's (url: the websocket; say_voice: the TTS of say commands; "
    "fallback_plan: the LLMs of the pipeline the call goes on with when the session fails, "
    "with stt_config and tts_config).",
    LLM,
    REALTIME,
    extra={"messages": list[SentMessage] | None, "say_voice": TtsSection | None},
)
SECTIONS: dict[str, type[msgspec.Struct]] = {
    STT: SttSection,
    TTS: TtsSection,
    LLM: LlmSection,
}


def check_section(
    section: str, provider: str | None, value: Mapping[str, object], where: str | None = None
) -> None:
    """400 naming the first key of ``value`` an organization may not set, or whose value is
    out of bounds. ``provider`` None (a partial section that names none yet): only keys no
    provider of the section takes are refused."""
    where = where or (LLM if section == REALTIME else section)
    if "provider" in value:  # whichever provider is named, a name is a string
        _PROVIDER["provider"](value["provider"], f"{where}.provider")
    known = TENANT_KEYS[section].get(provider) if provider is not None else None
    allowed = known if known is not None else any_provider_keys(section)
    for key, item in value.items():
        rule = allowed.get(key)
        if rule is None:
            if key in OPERATOR_KEYS:
                raise BadRequest(f"{where}.{key} is set by the operator, not per assistant")
            of = f"the {provider} {_KIND_NAMES[section]}" if known is not None else "any provider"
            raise BadRequest(f"{where}.{key} is not a setting of {of}")
        if known is not None:
            rule(item, f"{where}.{key}")


def tenant_part(section: str, provider: str, value: Mapping[str, JsonValue]) -> JsonObject:
    """The keys of a stored section this list allows with a value in bounds (the rest is
    dropped: operator-only settings come from the operator's own configuration)."""
    allowed = TENANT_KEYS[section].get(provider) or any_provider_keys(section)
    kept: JsonObject = {}
    for key, item in value.items():
        rule = allowed.get(key)
        if rule is None:
            continue
        try:
            rule(item, key)
        except BadRequest:
            continue
        kept[key] = item
    plan = kept.get(FALLBACK_PLAN)
    if isinstance(plan, list):  # checked: a list of sections naming their providers
        kept[FALLBACK_PLAN] = [
            tenant_part(PLAN_KIND[section], str(entry["provider"]), entry)
            for entry in plan
            if isinstance(entry, dict)
        ]
    return kept
