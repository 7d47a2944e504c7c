"""An assistant's configuration as types: what is saved, stored with a call, and run.

``AssistantConfig`` is a configuration as ``check_config`` (``calls/assistants/config.py``)
let it through, at the API's edge, ``[[assistants]]`` or an organization's server's answer: the
settings it holds (a setting left out is ``UNSET``), its plans typed. It is what
``Assistant.config``, ``Call.assistant_config`` and ``Campaign.assistant_config`` carry and
the engine reads by attribute; the store keeps it as its JSON.

A provider section (``stt_config``, ``tts_config``, ``llm_config``) is carried as it was set
(``Section``): which provider it is for, hence which keys it may hold, is known once the
provider rules resolved it. Its types, ``SttConfig``, ``TtsConfig``, ``LlmConfig`` and (a
speech-to-speech assistant's ``llm_config``, the realtime session's) ``RealtimeConfig``, each
hold the keys some provider of that kind reads. What an organization may set in them, and within
which bounds, is ``domain/tenant_provider_fields.py``'s list; the host's keys (``model_path``,
``cache_dir``, ``device``...) come from the operator's ``[speech]`` section only
(``calls/offline_speech.py``). A section is decoded into its type where the call's providers
are built (``pipeline/providers/section.py``): each provider reads the fields it knows, with
its own defaults for what the section leaves out.

``UNSET`` marks the keys whose absence and null mean two things: a Whisper ``language`` of null
detects the language (absent: English), a Deepgram ``endpointing_ms`` of null turns endpointing
off (absent: 300 ms).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, TypeVar, get_args

import msgspec
from msgspec import UNSET, Meta, UnsetType

from voicedock.domain.flows import Flow
from voicedock.domain.json import JsonObject, JsonValue
from voicedock.domain.knowledge import (
    DEFAULT_CHUNKS_PER_SEARCH,
    MAX_BASES_PER_ASSISTANT,
    MAX_CHUNKS_PER_SEARCH,
    Retrieval,
)
from voicedock.domain.vocabulary import Pronunciation
from voicedock.validation import WHITESPACE

# The plans' bounds and defaults (the API documents them; ``check_config`` checks them with
# the messages the API documents; the pipeline runs them).
TOOL_FILLER_MESSAGE_MAX = 500
# The LLM filler (``llm_filler``): its delay's bounds and default (seconds), and how many
# phrases of how many characters at most.
LLM_FILLER_DELAY = (0, 10)
DEFAULT_LLM_FILLER_DELAY_S = 1.2
DEFAULT_LLM_FILLER_MESSAGES = ("Let me see.", "One moment.")
LLM_FILLER_MESSAGES = (10, 200)
# The caller's keypad (``keypad``): when the digits of one entry become a user turn.
KEYPAD_TERMINATORS = ("#", "*")
KEYPAD_TIMEOUT = (0.5, 30.0)
KEYPAD_MAX_DIGITS = (1, 64)
KEYPAD_DEFAULT_TIMEOUT_S = 3.0
KEYPAD_DEFAULT_MAX_DIGITS = 16
KEYPAD_DEFAULT_TERMINATOR = "#"
# The redaction plan (``redaction_plan``): its custom patterns' bounds, what the model sees.
# How a pipeline call decides that the caller finished a turn: a turn model that hears it
# ("model"), or the silence after the words ("silence"; pipeline/hearing/endpointing.py).
TURN_MODEL = "model"
TURN_SILENCE = "silence"
TurnDetection = Literal["model", "silence"]
TURN_DETECTIONS: tuple[str, ...] = get_args(TurnDetection)

REDACTION_PATTERNS_MAX = 10
REDACTION_PATTERN_MAX = 500  # characters of one pattern
REDACTION_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
MODEL_SEES = ("redacted", "clear")
# Consent and disclosure (``consent_plan``): a message said before the first message and, by
# key, the caller's answer about the recording (docs/privacy.md).
CONSENT_MODES = ("announce", "opt_out_keypad", "opt_in_keypad")
CONSENT_REFUSALS = ("no_recording", "no_recording_no_transcript", "end_call")
CONSENT_KEYS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#")
CONSENT_TIMEOUT = (1.0, 30.0)
CONSENT_MESSAGE_MAX = 500
CONSENT_DEFAULT_KEY = "9"
CONSENT_DEFAULT_TIMEOUT_S = 5.0
CONSENT_DEFAULT_REFUSAL = "no_recording"
# Phone menus (``phone_menu``): the goal the model navigates a company's menu for, and how long
# the call waits (seconds of the line's audio from the answer) for a person to pick up.
PHONE_MENU_GOAL_MAX = 1_000
PHONE_MENU_WAIT = (10, 3_600)
PHONE_MENU_DEFAULT_WAIT_S = 900
# Callers remembered (``memory``): how many earlier calls' summaries the model is given.
MEMORY_CALLS = (1, 10)
MEMORY_DEFAULT_CALLS = 3
KEYPAD_DEFAULTS = {
    "enabled": True,
    "timeout_seconds": KEYPAD_DEFAULT_TIMEOUT_S,
    "terminator": KEYPAD_DEFAULT_TERMINATOR,
    "max_digits": KEYPAD_DEFAULT_MAX_DIGITS,
}


class ProviderSection(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """What every section has: the engine's name, the organization's own key (or the name of
    one of its stored keys), the request limits of a cloud engine (seconds)."""

    provider: str = ""
    api_key: str | None = None
    api_key_ref: str | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    total_timeout_s: float | None = None


class _Cloud(ProviderSection, kw_only=True, frozen=True, omit_defaults=True):
    base_url: str | None = None  # the provider's endpoint (None: its own)


class SttConfig(_Cloud, kw_only=True, frozen=True, omit_defaults=True):
    """``stt_config``: offline Whisper, OpenAI or Deepgram."""

    model: str | None = None
    language: str | UnsetType | None = UNSET  # a BCP 47 tag; null: detect (Whisper)
    prompt: str | None = None  # OpenAI
    keyterms: list[str] | None = None  # every recognizer (domain/vocabulary.py)
    # Whisper
    beam_size: int = 1
    encoder_context: str = "auto"
    streaming: bool = True
    # Deepgram
    endpointing_ms: int | UnsetType | None = UNSET
    interim_results: bool = True
    smart_format: bool = True
    # The operator's (Whisper on this host)
    model_path: str | None = None
    cache_dir: str | None = None
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = 0
    num_workers: int = 1


class VoiceSettings(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """ElevenLabs' own ``voice_settings``, passed on as set."""

    stability: float | None = None
    similarity_boost: float | None = None
    style: float | None = None
    use_speaker_boost: bool | None = None
    speed: float | None = None


class TtsConfig(_Cloud, kw_only=True, frozen=True, omit_defaults=True):
    """``tts_config``: offline Piper or espeak-ng, OpenAI or ElevenLabs."""

    voice: str | None = None
    model: str | None = None
    sample_rate: int | None = None  # ElevenLabs' output; a node voice's own rate
    # Piper, espeak-ng
    length_scale: float | None = None
    words_per_minute: float | None = None
    model_path: str | None = None  # the operator's Piper voice
    # OpenAI
    instructions: str | None = None
    speed: float | None = None
    # ElevenLabs
    voice_id: str | None = None
    model_id: str | None = None
    language_code: str | None = None
    voice_settings: VoiceSettings | None = None
    # Every voice: its pronunciation dictionary (domain/vocabulary.py)
    pronunciations: list[Pronunciation] | None = None


class SeedMessage(msgspec.Struct, kw_only=True, frozen=True):
    """One of ``llm_config.messages``: a system instruction, or an earlier turn of the
    conversation (a resumed call's, or the assistant's own examples)."""

    role: Literal["system", "user", "assistant"]
    content: str


class LlmConfig(_Cloud, kw_only=True, frozen=True, omit_defaults=True):
    """``llm_config`` of a pipeline assistant: an OpenAI-compatible chat model or the offline
    rule-based policy. Its ``messages`` seed the conversation (``calls/live/config.py``)."""

    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    # The rule-based policy
    facts: dict[str, str] | None = None
    greeting: str | None = None
    closing: str | None = None
    fallback: str | None = None
    messages: list[SeedMessage] | None = None  # earlier turns of the conversation


class RealtimeConfig(ProviderSection, kw_only=True, frozen=True, omit_defaults=True):
    """``llm_config`` of a speech-to-speech assistant: the realtime session, and the voice
    voicedock's own TTS says the verbatim texts in (``say_voice``)."""

    url: str | None = None  # the session's websocket (None: xAI's)
    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    sample_rate: int | None = None
    say_voice: TtsConfig | None = None
    messages: list[SeedMessage] | None = None  # earlier turns of the conversation


# An assistant's plans: what the caller hears while a tool or the LLM is slow (``tool_filler``,
# ``llm_filler``), its keypad (``keypad``) and whether inbound calls ask the organization's
# server first (``assistant_request``). A setting a plan leaves out is ``UNSET`` (its default
# applies), a null one ``None`` where null means something (no LLM filler, no terminator).


def _setting(description: str, default: object, within: tuple[float, float] | None = None) -> Meta:
    """A plan's setting: what it does, its default (documented; applied where the plan is read)
    and, for a number, the range it takes."""
    low, high = within or (None, None)
    return Meta(ge=low, le=high, description=description, extra_json_schema={"default": default})


class Plan(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A plan's settings: any other key is refused."""


class ToolFiller(Plan, kw_only=True):
    message: (
        Annotated[
            str,
            Meta(
                max_length=TOOL_FILLER_MESSAGE_MAX,
                description="Said while a tool runs longer than delay_seconds; empty: nothing "
                "is said.",
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    delay_seconds: Annotated[float, Meta(ge=0, le=10)] | UnsetType | None = UNSET


class LlmFiller(Plan, kw_only=True):
    """A slow LLM: the caller hears a short phrase, then the reply (pipeline assistants; not
    with xai_realtime). In the transcript as an assistant message of its own, never in the
    model's context. docs/speech.md."""

    delay_seconds: (
        Annotated[
            float,
            _setting(
                "Seconds after the caller's turn ended without the reply's first "
                "sentence before the filler is said; null: no filler.",
                DEFAULT_LLM_FILLER_DELAY_S,
                LLM_FILLER_DELAY,
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    messages: (
        Annotated[
            list[
                Annotated[
                    str,
                    Meta(
                        min_length=1,
                        max_length=LLM_FILLER_MESSAGES[1],
                        pattern=f"[^{WHITESPACE}]",  # not blank
                    ),
                ]
            ],
            Meta(
                min_length=1,
                max_length=LLM_FILLER_MESSAGES[0],
                description="The phrases, one per slow turn, taken in turn.",
                extra_json_schema={"default": list(DEFAULT_LLM_FILLER_MESSAGES)},
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


KeypadTerminator = Literal["#", "*"]
assert get_args(KeypadTerminator) == KEYPAD_TERMINATORS


class Keypad(Plan, kw_only=True):
    """The caller's keypad: the keys of one entry become one user turn, "Keypad: 1234#",
    answered like a spoken one; each key barges in like speech. Without a plan, the defaults
    apply. docs/keypad.md."""

    enabled: (
        Annotated[
            bool,
            _setting(
                "false: the caller's keys are ignored (no barge-in by key, never "
                "given to the model), for a line whose keys are not the caller's.",
                KEYPAD_DEFAULTS["enabled"],
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    timeout_seconds: (
        Annotated[
            float,
            _setting(
                "The entry ends this long after the last key pressed.",
                KEYPAD_DEFAULTS["timeout_seconds"],
                KEYPAD_TIMEOUT,
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    terminator: (
        Annotated[
            KeypadTerminator,
            _setting(
                "The key that ends the entry (kept in it); null: none.",
                KEYPAD_DEFAULTS["terminator"],
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    max_digits: (
        Annotated[
            int,
            _setting(
                "The entry ends with this many keys.",
                KEYPAD_DEFAULTS["max_digits"],
                KEYPAD_MAX_DIGITS,
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


ConsentMode = Literal["announce", "opt_out_keypad", "opt_in_keypad"]
assert get_args(ConsentMode) == CONSENT_MODES
ConsentRefusal = Literal["no_recording", "no_recording_no_transcript", "end_call"]
assert get_args(ConsentRefusal) == CONSENT_REFUSALS
ConsentKey = Literal["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#"]
assert get_args(ConsentKey) == CONSENT_KEYS


class ConsentPlan(Plan, kw_only=True):
    """A disclosure said before the first message and, by key, the caller's answer about the
    recording: ``announce`` only says it; ``opt_out_keypad``: the key refuses, the timeout
    passing without it accepts; ``opt_in_keypad``: only the key accepts. The recording is held
    in memory until the answer, and discarded on a refusal. docs/privacy.md."""

    mode: Annotated[
        ConsentMode,
        Meta(description="announce: the message only; opt_out_keypad / opt_in_keypad: the key."),
    ]
    message: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=CONSENT_MESSAGE_MAX,
            pattern=f"[^{WHITESPACE}]",
            description="Said to its end (no barge-in) before the first message.",
        ),
    ]
    key: (
        Annotated[
            ConsentKey,
            _setting(
                "The key of the caller's answer (pressed during the message or "
                "the timeout after it; never given to the model).",
                CONSENT_DEFAULT_KEY,
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    timeout_seconds: (
        Annotated[
            float,
            _setting(
                "How long after the message the key is waited for.",
                CONSENT_DEFAULT_TIMEOUT_S,
                CONSENT_TIMEOUT,
            ),
        ]
        | UnsetType
        | None
    ) = UNSET
    on_refusal: (
        Annotated[
            ConsentRefusal,
            _setting(
                "no_recording: the call goes on unrecorded; "
                "no_recording_no_transcript: the call goes on, neither recorded nor its "
                'transcript kept or sent; end_call: it ends "consent-refused" (unrecorded).',
                CONSENT_DEFAULT_REFUSAL,
            ),
        ]
        | UnsetType
        | None
    ) = UNSET


class AssistantRequest(Plan, kw_only=True):
    """Inbound calls to this assistant's numbers first ask the organization's server
    (assistant-request webhook); this assistant answers when it gives no usable answer in
    time."""

    timeout_seconds: Annotated[int, Meta(ge=1, le=20)] | UnsetType | None = UNSET


RedactionCategory = Literal[
    "card_number",
    "iban",
    "email",
    "phone_number",
    "date_of_birth",
    "national_id",
    "postal_address",
]
ModelSees = Literal["redacted", "clear"]
assert get_args(ModelSees) == MODEL_SEES


class CustomPattern(Plan, kw_only=True):
    name: Annotated[
        str,
        Meta(
            pattern=REDACTION_NAME_PATTERN,
            description="The placeholder's name: a match becomes [name].",
        ),
    ]
    regex: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=REDACTION_PATTERN_MAX,
            description="An RE2 regular expression (no back-references or look-arounds), "
            "matched case-insensitively, in linear time.",
        ),
    ]


class RedactionPlan(Plan, kw_only=True):
    """What is replaced by a placeholder ([card_number], [email], a pattern's [name]) in what
    the call keeps and sends: the transcript, its events, webhooks, the analysis. Spoken forms
    ("four one one one", "at gmail dot com") are caught. docs/privacy.md."""

    categories: (
        Annotated[
            list[RedactionCategory],
            Meta(
                max_length=len(get_args(RedactionCategory)),
                description="card_number (13-19 digits, Luhn-checked), iban (its country's "
                "length and check digits), email, phone_number (libphonenumber), "
                "date_of_birth (a whole date, written or spoken), national_id (NL, US, DE, "
                "BE, FR, GB, ES and IT identifiers, their checks held), postal_address (a "
                "street and its number, postcodes).",
            ),
        ]
        | UnsetType
    ) = UNSET
    custom_patterns: (
        Annotated[list[CustomPattern], Meta(max_length=REDACTION_PATTERNS_MAX)] | UnsetType
    ) = UNSET
    model_sees: (
        Annotated[
            ModelSees,
            _setting(
                "redacted: the model is given the caller's words redacted too; "
                "clear: as said (what is kept and sent stays redacted).",
                "redacted",
            ),
        ]
        | UnsetType
    ) = UNSET
    region: (
        Annotated[
            str,
            Meta(
                pattern="^[A-Z]{2}$",
                description="The country (ISO 3166 alpha-2) a phone number said without its "
                "country code is read in.",
                extra_json_schema={"default": "US"},
            ),
        ]
        | UnsetType
    ) = UNSET


# The end-of-call analysis (``analysis_plan``): its texts' longest (characters), and the
# longest id of an analysis template a plan names instead.
ANALYSIS_TEXT_MAX = 5_000
TEMPLATE_ID_MAX = 100


class AnalysisPlan(Plan, kw_only=True):
    """What the end-of-call analysis asks for (an assistant's plan, or an analysis
    template's); a setting null or left out: none. The structured data schema's bounds are
    ``domain/tenant_schemas.py``'s (no model states them)."""

    summary_prompt: str | UnsetType | None = UNSET
    structured_data_schema: dict[str, object] | UnsetType | None = UNSET
    success_evaluation_rubric: str | UnsetType | None = UNSET


class AnalysisTemplateRef(Plan, kw_only=True):
    """An assistant's ``analysis_plan`` naming an analysis template of its organization
    instead (its plan replaces the reference when a call is placed)."""

    template_id: Annotated[str, Meta(min_length=1, max_length=TEMPLATE_ID_MAX)]


Section = dict[str, object]  # a provider section as set (its keys: its provider's)


# The languages an assistant speaks (``languages``): a few, each a BCP 47 primary language tag
# (``de``), the voice of its replies, an optional line for the system prompt and an optional
# first message.
LANGUAGES_MAX = 5
LANGUAGE_TAG_PATTERN = r"^[a-z]{2,3}$"
LANGUAGE_VOICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"
LANGUAGE_TEXT_MAX = 500
# A language's country calling codes (``49``, ``43``, ``1``): 1-3 digits, at most this many.
CALLING_CODE_PATTERN = r"^[1-9][0-9]{0,2}$"
CALLING_CODES_MAX = 10


class LanguageVoice(Plan, kw_only=True):
    """A language's voice: the name of a voice of the assistant's TTS provider (espeak-ng
    ``de``, a Piper voice, a cloud voice's name)."""

    voice: Annotated[str, Meta(pattern=LANGUAGE_VOICE_PATTERN)]


class Language(Plan, kw_only=True):
    """One of ``languages``: a language the assistant answers in, when the caller speaks it."""

    language: Annotated[str, Meta(pattern=LANGUAGE_TAG_PATTERN)]
    voice: LanguageVoice | UnsetType = UNSET
    prompt: Annotated[str, Meta(min_length=1, max_length=LANGUAGE_TEXT_MAX)] | UnsetType = UNSET
    first_message: Annotated[str, Meta(min_length=1, max_length=LANGUAGE_TEXT_MAX)] | UnsetType = (
        UNSET
    )
    # The country calling codes whose numbers the call opens in this language (the far
    # party's number: an inbound caller's, an outbound call's destination).
    calling_codes: (
        Annotated[
            list[Annotated[str, Meta(pattern=CALLING_CODE_PATTERN)]],
            Meta(min_length=1, max_length=CALLING_CODES_MAX),
        ]
        | UnsetType
    ) = UNSET


class PhoneMenu(Plan, kw_only=True):
    """An outbound call that reaches a company's phone line: its menu is navigated for
    ``goal`` (the model chooses the keys, ``navigate_menu``), its hold waited through in
    silence, and the first message said when a person picks up. docs/phone-menus.md."""

    goal: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=PHONE_MENU_GOAL_MAX,
            pattern=f"[^{WHITESPACE}]",
            description="What the menu is navigated for (the model reads it with each menu "
            "it hears): 'reach the appointments desk'.",
        ),
    ]
    max_wait_seconds: (
        Annotated[
            int,
            _setting(
                "Seconds of the line's audio from the answer to the person picking up "
                "(menus and hold together); then the call ends phone-menu-timeout.",
                PHONE_MENU_DEFAULT_WAIT_S,
                PHONE_MENU_WAIT,
            ),
        ]
        | UnsetType
    ) = UNSET


class Memory(Plan, kw_only=True):
    """Callers remembered: each call's summary kept under the caller's number (the
    organization's, ``/callers/{number}/memory``), the latest given to the model when the
    same number calls or is called again. docs/caller-memory.md."""

    recent_calls: (
        Annotated[
            int,
            _setting(
                "How many of the caller's earlier calls (their summaries, newest first) the "
                "model is given at the start.",
                MEMORY_DEFAULT_CALLS,
                MEMORY_CALLS,
            ),
        ]
        | UnsetType
    ) = UNSET


class Knowledge(Plan, kw_only=True):
    """The organization's knowledge bases the assistant answers from (``/knowledge-bases``):
    the model searches them with the ``search_knowledge`` tool, or each turn's words are
    searched and what is found goes into that turn's request. docs/knowledge.md."""

    knowledge_base_ids: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=64)]],
        Meta(
            min_length=1,
            max_length=MAX_BASES_PER_ASSISTANT,
            description="The organization's knowledge bases searched (their ids).",
        ),
    ]
    retrieval: (
        Annotated[
            Retrieval,
            _setting(
                "tool: the model searches when it needs to (search_knowledge); every_turn: "
                "the caller's words of each turn are searched and what is found goes into "
                "that turn's request.",
                "tool",
            ),
        ]
        | UnsetType
    ) = UNSET
    max_chunks: (
        Annotated[
            int,
            _setting(
                "The most chunks a search gives the model.",
                DEFAULT_CHUNKS_PER_SEARCH,
                (1, MAX_CHUNKS_PER_SEARCH),
            ),
        ]
        | UnsetType
    ) = UNSET


Languages = Annotated[list[Language], Meta(min_length=1, max_length=LANGUAGES_MAX)]


class AssistantConfig(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """An assistant's configuration, as checked: a setting left out is ``UNSET``. Its fields
    are what an organization may set (``CONFIG_FIELDS``), and ``hang_up_after_first_message``,
    never the API's: a call the organization's server refused says its refusal and hangs up."""

    provider: str | UnsetType = UNSET
    first_message: str | UnsetType = UNSET
    system_prompt: str | UnsetType = UNSET
    llm_config: Section | UnsetType = UNSET
    stt_config: Section | UnsetType = UNSET
    tts_config: Section | UnsetType = UNSET
    facts: dict[str, str] | UnsetType = UNSET
    silence_timeout_seconds: int | UnsetType = UNSET
    max_duration_seconds: int | UnsetType = UNSET
    media_format: str | UnsetType = UNSET
    tools: list[dict[str, object]] | UnsetType = UNSET  # calls/tools/config.py checks them
    assistant_request: AssistantRequest | UnsetType = UNSET
    # A plan (summary_prompt, structured_data_schema, success_evaluation_rubric) or, saved,
    # a reference to an analysis template (``{"template_id": ...}``).
    analysis_plan: dict[str, object] | UnsetType = UNSET
    tool_filler: ToolFiller | UnsetType = UNSET
    llm_filler: LlmFiller | UnsetType = UNSET
    record: bool | UnsetType = UNSET
    voicemail_detection: str | UnsetType = UNSET
    voicemail_message: str | UnsetType = UNSET
    screening_message: str | UnsetType = UNSET
    turn_detection: str | UnsetType = UNSET
    barge_in_on_words: bool | UnsetType = UNSET
    noise_suppression: bool | UnsetType = UNSET
    languages: list[Language] | UnsetType = UNSET
    silence_prompt_seconds: int | UnsetType = UNSET
    silence_prompt_message: str | UnsetType = UNSET
    dead_air_seconds: int | UnsetType = UNSET
    dead_air_message: str | UnsetType = UNSET
    keypad: Keypad | UnsetType = UNSET
    redaction_plan: RedactionPlan | UnsetType = UNSET
    consent_plan: ConsentPlan | UnsetType = UNSET
    phone_menu: PhoneMenu | UnsetType = UNSET
    knowledge: Knowledge | UnsetType = UNSET
    memory: Memory | UnsetType = UNSET
    flow: Flow | UnsetType = UNSET
    hang_up_after_first_message: bool | UnsetType = UNSET


HANG_UP_AFTER_FIRST_MESSAGE = "hang_up_after_first_message"
# What an organization may set in a configuration (saved with it; an assistant's name,
# business_name and active are columns of its record): every setting but voicedock's own.
CONFIG_FIELDS = tuple(
    name for name in AssistantConfig.__struct_fields__ if name != HANG_UP_AFTER_FIRST_MESSAGE
)


def config_of(checked: Mapping[str, JsonValue]) -> AssistantConfig:
    """A configuration ``check_config`` (and the provider rules) let through, as its type."""
    return msgspec.convert(checked, AssistantConfig)


def config_json(config: AssistantConfig) -> JsonObject:
    """``config`` as its JSON: the settings it holds, as they were set."""
    built: JsonObject = msgspec.to_builtins(config)
    return built


T = TypeVar("T")
D = TypeVar("D")


def set_or(value: T | UnsetType, default: D) -> T | D:
    """A setting, or ``default`` where the configuration (or plan) leaves it out."""
    return default if isinstance(value, UnsetType) else value


def given(value: T | UnsetType | None, default: T) -> T:
    """A setting, or ``default`` where it is left out or set null."""
    return default if value is None or isinstance(value, UnsetType) else value
