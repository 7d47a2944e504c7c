"""The speech providers of one call, built from its resolved assistant configuration.

A call's configuration is the typed snapshot resolved once, when the call was placed
(``calls/assistants/resolve.py``: the provider rules, ``resolve_provider``, gave each engine
its section — the operator's engines for missing sections, the LLM of a
``provider: openai``/``mistral`` assistant that provider's), its referenced keys opened in
memory (``calls/runner/call_speech.py``). It is handed down here as it is: checked, not
resolved again (``calls/assistants/snapshot.py``), each section completed by the operator's
settings (``_section``) and decoded by its type (``LlmConfig``...) for its provider's client.
A pipeline call gets STT, LLM and TTS from the ``stt_config``/``llm_config``/``tts_config``
sections.
A speech-to-speech call (``provider: xai_realtime``) gets the realtime session from
``llm_config`` (url, model, voice; the key from the settings unless the section has one) plus
voicedock's own TTS, which speaks what must be said verbatim (first message, ``say``, final
messages, the fallback) in the voice the assistant chose in ``llm_config.say_voice`` (a TTS
section; without it the operator's ``[speech] tts``), with the operator's key for that engine
as for any ``tts_config``. With ``llm_config.fallback_plan`` (else the operator's default LLM
plan, ``[speech.fallback_plans] llm``) it also gets the pipeline it goes on with when its
session fails (``RealtimePlan``): the plan's LLM sections, ``stt_config`` (else the operator's
STT) and ``tts_config`` (else the ``say_voice``), each engine made as a pipeline call's is, with
the plans its sections give (else the operator's default plans).

The operator's ``[speech]`` keys only go to the operator's endpoints: a section naming its own
``base_url`` (or realtime ``url``) must bring its own ``api_key``. Where the operator requires
organizations' own keys (``[byok] mode = "required"``: ``speech_keys=False``) they go nowhere:
a section that would take one is a ``ProviderConfigError`` instead (what a call reaches was
checked already, ``calls/assistants/key_refs.py``; this is the last word where keys are read).

A section reaches its provider through the list of what an organization may set
(``domain/tenant_provider_fields.py``): a stored configuration's other keys are dropped here,
whatever was accepted when it was saved, and the host's settings (Whisper's model, cache directory,
device, compute type and threads; Piper's voice file) come from the operator's ``[speech]``
section only. So no assistant makes the node read, write or load anything the operator did not
configure.

With an ``egress`` guard (a call's providers always have one) the URLs are checked against the
operator's policy before anything is built (``calls.assistants.urls``: a scheduled call placed
before the policy changed, an inbound call, whose assistant is chosen without it) and every
connection passes the guard.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar

import msgspec
from msgspec import UNSET

from voicedock.calls.assistants.config import (
    SAY_VOICE,
    WHISPER_NAMES,
    operator_plan,
    resolve_provider,
    tenant_sections,
)
from voicedock.calls.assistants.providers import SPEECH_TO_SPEECH
from voicedock.calls.assistants.snapshot import checked_at_answer, provider_sections
from voicedock.calls.live.turn_choice import turn_detection
from voicedock.calls.offline_speech import operator_settings
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import (
    TURN_MODEL,
    AssistantConfig,
    LlmConfig,
    RealtimeConfig,
    SttConfig,
    TtsConfig,
    config_json,
    config_of,
    set_or,
)
from voicedock.domain.json import JsonObject, JsonValue, json_object
from voicedock.domain.tenant_provider_fields import FALLBACK_PLAN
from voicedock.egress import Egress
from voicedock.errors import BadRequest
from voicedock.pipeline.fallback_plans.llm import LlmPlan
from voicedock.pipeline.fallback_plans.plan import Entry, Switch
from voicedock.pipeline.fallback_plans.realtime import RealtimePlan
from voicedock.pipeline.fallback_plans.serving import Endpoints
from voicedock.pipeline.fallback_plans.stt import SttPlan
from voicedock.pipeline.hearing.language import CallLanguages, SpokenLanguage, answer_in
from voicedock.pipeline.pools.provider_health import Endpoint, ProviderHealth
from voicedock.pipeline.providers.base import (
    LanguageDetectingStt,
    Llm,
    ProviderConfigError,
    Stt,
    Tts,
)
from voicedock.pipeline.providers.registry import RULE_BASED, create_llm, create_stt, create_tts
from voicedock.pipeline.providers.rule_based import PoliteClose
from voicedock.pipeline.providers.section import decoded

if TYPE_CHECKING:
    from voicedock.pipeline.hearing.turn_detection import PredictTurn
    from voicedock.pipeline.providers.realtime import RealtimeSpeech


class _Closing(Protocol):
    async def aclose(self) -> None: ...


SectionT = TypeVar("SectionT", SttConfig, LlmConfig, TtsConfig)
P = TypeVar("P", bound=_Closing)
# Sections an engine is made of, in order: the section (None: the operator's engine), where it
# is written, and whether it is the operator's (an entry of its default plan).
Parts: TypeAlias = "list[tuple[JsonObject | None, str, bool]]"
# The sections of an engine a call may use, in order: each completed and typed, its endpoint,
# and whether it comes after the engine's first.
Usable: TypeAlias = list[tuple[SectionT, Endpoint, bool]]

# A section that would take the operator's [speech] key where the operator does not allow it.
_REQUIRED = "{}: the operator requires the organization's own {} key, not its [speech] key"


@dataclass(slots=True)
class SpeechProviders:
    stt: Stt | None  # None for speech-to-speech
    llm: Llm | None  # also analyses the call when set (a plan too: ``LlmPlan``)
    tts: Tts
    realtime: RealtimeSpeech | None = None
    # The providers' names, as the call's usage counts them (``domain.usage``; None: unnamed).
    stt_name: str | None = None
    tts_name: str | None = None
    # A pipeline call's engines as built (a plan: its first entry), which its turns name.
    endpoints: Endpoints | None = None
    # What a speech-to-speech call goes on with when its session fails (its fallback plan).
    pipeline: RealtimePlan | None = None
    # The turn model a pipeline call asks at the caller's pauses (turn_detection "model"),
    # in a thread, or in the node's recognition pool (``calls/runner/one_call.py``); None:
    # silence decides.
    predict_turn: PredictTurn | None = None
    # The assistant's languages, which a pipeline call follows turn by turn (None: it lists
    # none, or its recognizer tells no language).
    languages: CallLanguages | None = None

    async def aclose(self) -> None:
        voices = () if self.languages is None else self.languages.voices()
        for provider in (self.stt, self.llm, self.tts, self.realtime, self.pipeline, *voices):
            if provider is not None:
                with contextlib.suppress(Exception):
                    await provider.aclose()


async def build_providers(
    assistant_config: AssistantConfig,
    speech: SpeechSettings | None = None,
    egress: Egress | None = None,
    *,
    speech_keys: bool = True,
    health: ProviderHealth | None = None,
    on_switch: Callable[[Switch], None] | None = None,
    placed: bool = False,
) -> SpeechProviders:
    """Providers from an assistant configuration (raises ProviderError, the ones already
    made closed); ``speech_keys`` False: the operator's ``[speech]`` keys are never used
    (``_section``). An engine with a fallback plan is a plan (``pipeline/fallback_plans/``)
    consulting the node's breakers (``health``) and reporting each move to the call
    (``on_switch``). With ``turn_detection`` "model", the turn model too. ``placed``: the
    configuration is a call's snapshot, resolved when the call was placed (``_ready``)."""
    made: list[_Closing] = []
    speech = speech or SpeechSettings()
    try:
        ready = _ready(assistant_config, speech, egress, placed)
        providers = _build(
            ready,
            speech,
            egress,
            speech_keys,
            made=made,
            health=health,
            on_switch=on_switch,
        )
    except BaseException:
        for provider in made:
            with contextlib.suppress(Exception):
                await provider.aclose()
        raise
    operator = speech.endpointing.turn_detection
    if turn_detection(assistant_config, operator) == TURN_MODEL:  # a handover's too
        from voicedock.pipeline.hearing.turn_detection import predict_in_thread

        providers.predict_turn = predict_in_thread
    return providers


def _build(
    config: AssistantConfig,
    speech: SpeechSettings,
    egress: Egress | None,
    speech_keys: bool,
    *,
    made: list[_Closing],
    health: ProviderHealth | None = None,
    on_switch: Callable[[Switch], None] | None = None,
) -> SpeechProviders:
    """The providers of a configuration ready to run (``_ready``), each added to ``made`` as
    it is made (the caller closes them if a later one fails)."""
    assistant_config = provider_sections(config)
    guard = None if egress is None else egress.for_providers()
    plans = _Plans(
        assistant_config, speech, speech_keys, health or ProviderHealth(), on_switch, guard
    )
    if config.provider in SPEECH_TO_SPEECH:
        return _speech_to_speech(assistant_config, plans, made)
    stt = plans.stt(made)
    llm = plans.llm(made)
    tts = plans.tts(made)
    return SpeechProviders(
        stt,
        llm,
        tts,
        stt_name=_provider_name(assistant_config, "stt_config", speech),
        tts_name=_provider_name(assistant_config, "tts_config", speech),
        endpoints=Endpoints(**plans.first),
        languages=_languages(
            config, stt, functools.partial(_tts, assistant_config, speech, speech_keys), guard
        ),
    )


def build_tts(
    config: AssistantConfig,
    speech: SpeechSettings | None = None,
    egress: Egress | None = None,
    *,
    speech_keys: bool = True,
    placed: bool = False,
) -> Tts:
    """The call's TTS alone, as ``build_providers`` makes it (a speech-to-speech call: the
    voice that speaks its verbatim texts): what synthesizing its first message ahead needs.
    ``placed``: the configuration is a call's snapshot (``_ready``)."""
    speech = speech or SpeechSettings()
    guard = None if egress is None else egress.for_providers()
    resolved = provider_sections(_ready(config, speech, egress, placed))
    if config.provider in SPEECH_TO_SPEECH:
        section = json_object(resolved.get("llm_config")) or {}
        return create_tts(_say_voice(section, speech, speech_keys), guard)
    return create_tts(_tts(resolved, speech, speech_keys), guard)


def voice_tts(
    tts_config: Mapping[str, JsonValue],
    sample_rate: int,
    speech: SpeechSettings,
    egress: Egress | None = None,
    *,
    speech_keys: bool = True,
) -> Tts:
    """A TTS speaking one voice of the node's list (``pipeline/speaking/node_voices.py``) at its own
    ``sample_rate``, with the operator's keys (unless ``speech_keys`` is False, as for a
    call under ``[byok] mode = "required"``) and host settings as for a call."""
    guard = None if egress is None else egress.for_providers()
    section = _tts({"tts_config": dict(tts_config)}, speech, speech_keys)
    return create_tts(msgspec.structs.replace(section, sample_rate=sample_rate), guard)


def _ready(
    config: AssistantConfig, speech: SpeechSettings, egress: Egress | None, placed: bool
) -> AssistantConfig:
    """``config`` as its providers are made from it, its URLs checked with ``egress``'s policy
    (a ``ProviderConfigError`` naming the key otherwise). A call's snapshot (``placed``) was
    resolved once, when the call was placed or its assistant chosen: at answer it is only
    checked, as a typed value, against what may have changed since (``checked_at_answer``:
    the egress policy, the node's voices, the list of an organization's settings), never
    parsed again. Any other configuration (an
    assistant's own, run by a conversation made without its providers) gets the provider
    rules here, as a call's got them when it was placed."""
    policy = None if egress is None else egress.policy
    try:
        if placed:
            return checked_at_answer(config, speech, policy)
        return config_of(
            resolve_provider(tenant_sections(config_json(config), speech), speech, policy)
        )
    except BadRequest as exc:
        raise ProviderConfigError(exc.message) from None


def _speech_to_speech(config: JsonObject, plans: _Plans, made: list[_Closing]) -> SpeechProviders:
    """The realtime session of a (resolved) speech-to-speech configuration, the voice of its
    verbatim texts and, with a fallback plan (its own or the operator's default LLM plan), the
    pipeline it goes on with."""
    from voicedock.pipeline.providers.realtime import XAI_REALTIME_URL, RealtimeSpeech

    speech, speech_keys, guard = plans.speech, plans.speech_keys, plans.guard
    section = dict(json_object(config.get("llm_config")) or {})
    # Opens nothing until the call connects, so a failing TTS below leaks nothing.
    own_url = section.get("url")
    operator_url = not own_url or own_url == XAI_REALTIME_URL
    if operator_url and not section.get("api_key") and not speech_keys:
        raise ProviderConfigError(_REQUIRED.format("llm_config", config.get("provider")))
    if operator_url and not section.get("api_key"):
        section["api_key"] = speech.xai_api_key  # the operator's key, as ``_section`` gives
    typed = decoded(RealtimeConfig, section, "llm_config")
    realtime = RealtimeSpeech(typed, egress=guard)
    tts = create_tts(_say_voice(section, speech, speech_keys), guard)
    made.append(tts)
    provider = str(config.get("provider"))
    session = Endpoint("realtime", provider, typed.url or "", typed.model or "")
    pipeline = plans.realtime_plan(session, section, made)
    # The realtime session hears the caller and speaks the replies: both count against it.
    return SpeechProviders(
        stt=None,
        llm=None,
        tts=tts,
        realtime=realtime,
        stt_name=provider,
        tts_name=provider,
        pipeline=pipeline,
    )


def _say_voice(realtime: JsonObject, speech: SpeechSettings, speech_keys: bool) -> TtsConfig:
    """The TTS section of a speech-to-speech call's verbatim texts: ``say_voice``, else the
    operator's ``[speech] tts``."""
    say_voice = realtime.get(SAY_VOICE) or {"provider": speech.tts}
    return _tts({"tts_config": say_voice}, speech, speech_keys)


def _tts(config: Mapping[str, JsonValue], speech: SpeechSettings, speech_keys: bool) -> TtsConfig:
    key = "tts_config"
    return decoded(TtsConfig, _section(config, key, speech, speech_keys=speech_keys), key)


def _languages(
    config: AssistantConfig, stt: Stt, tts_section: Callable[[], TtsConfig], guard: Egress | None
) -> CallLanguages | None:
    """The call's languages: the assistant's ``languages``, each with its line for the model
    and its voice (the assistant's TTS section speaking that voice: a ``voice_id`` of its
    own does not speak for the language), detected by its recognizer (the first of its plan;
    one that tells no language detects none: the call stays in its opening language)."""
    if config.languages is UNSET:
        return None
    tts = tts_section()  # read only for an assistant that lists languages
    detector = stt.primary if isinstance(stt, SttPlan) else stt
    stt_section = config.stt_config
    own = stt_section.get("language") if isinstance(stt_section, Mapping) else None
    spoken = [
        SpokenLanguage(
            entry.language,
            entry.prompt if entry.prompt is not UNSET else answer_in(entry.language),
            None
            if entry.voice is UNSET
            else create_tts(
                msgspec.structs.replace(tts, voice=entry.voice.voice, voice_id=None), guard
            ),
            set_or(entry.first_message, None),
        )
        for entry in config.languages
    ]
    detecting = detector if isinstance(detector, LanguageDetectingStt) else None
    return CallLanguages(own if isinstance(own, str) else "en", spoken, detecting)


def _provider_name(config: Mapping[str, JsonValue], key: str, speech: SpeechSettings) -> str | None:
    provider = _section(config, key, speech).get("provider")
    return str(provider) if provider else None


def _section(
    config: Mapping[str, JsonValue], key: str, speech: SpeechSettings, *, speech_keys: bool = True
) -> JsonObject:
    """One provider section, with the operator's ``[speech]`` key and base URL for its cloud
    provider unless the assistant brings its own. The operator's key only ever goes to the
    operator's base URL: a section naming another ``base_url`` must bring its own key; with
    ``speech_keys`` False, a section that would take it is a ``ProviderConfigError``. The
    host settings of the offline engines are the operator's alone (``operator_settings``)."""
    value = config.get(key)
    if not isinstance(value, Mapping):
        value = {"provider": "offline"}
    provider = str(value.get("provider", ""))
    section = {**value, **operator_settings(key, provider, speech)}
    operator_url = _operator_url(provider, speech)
    own_url = section.get("base_url")
    if own_url and str(own_url).rstrip("/") != (operator_url or "").rstrip("/"):
        return section
    default_key = _SPEECH_KEYS.get((key, provider), "")
    if default_key and not section.get("api_key") and not speech_keys:
        raise ProviderConfigError(_REQUIRED.format(key, provider))
    if default_key and getattr(speech, default_key):
        section.setdefault("api_key", getattr(speech, default_key))
    if operator_url:
        section.setdefault("base_url", operator_url)
    return section


def uses_turn_model(config: AssistantConfig, speech: SpeechSettings) -> bool:
    """Whether a call of this assistant configuration asks the node's turn model at the
    caller's pauses (in the recognition pool): a pipeline call detecting turns with it."""
    if config.provider in SPEECH_TO_SPEECH:
        return False
    return turn_detection(config, speech.endpointing.turn_detection) == TURN_MODEL


def uses_local_stt(config: AssistantConfig, speech: SpeechSettings) -> bool:
    """Whether a call of this assistant configuration transcribes with the node's offline
    Whisper (the recognition pool), rather than a cloud STT or a speech-to-speech model: its
    ``stt_config``'s provider, else the operator's STT (a resolved configuration names it)."""
    if config.provider in SPEECH_TO_SPEECH:
        return False
    section = json_object(provider_sections(config).get("stt_config")) or {}
    return section.get("provider", speech.stt) in WHISPER_NAMES


def _operator_url(provider: str, speech: SpeechSettings) -> str | None:
    """The operator's base URL for ``provider`` (None: the client's own default)."""
    return {"openai": speech.openai_base_url, "mistral": speech.mistral_base_url}.get(provider)


# (section, provider) -> the SpeechSettings field holding its API key.
_SPEECH_KEYS = {
    ("llm_config", "openai"): "openai_api_key",
    ("llm_config", "mistral"): "mistral_api_key",
    ("llm_config", "xai"): "xai_api_key",
    ("stt_config", "openai"): "openai_api_key",
    ("tts_config", "openai"): "openai_api_key",
    ("stt_config", "deepgram"): "deepgram_api_key",
    ("tts_config", "elevenlabs"): "elevenlabs_api_key",
}


class _Plans:
    """Each engine of a resolved configuration: its section alone, or a plan of the section
    and its ``fallback_plan`` entries, each completed by the operator's settings as a section
    is (``_section``) and made by the registry, connecting through ``guard``.

    A section without a ``fallback_plan`` of its own (or no section: the operator's engine)
    takes the operator's default plan of its engine (``[speech.fallback_plans]``), less an
    entry that is the section's own endpoint; an assistant's own plan replaces it. The
    operator's entries are the operator's: its URLs and its ``[speech]`` keys, except where it
    requires organizations' own keys (``speech_keys`` False), where an entry that would take
    one of its keys is left out. A rule-based entry after the first is ``PoliteClose``: it
    ends the call politely. A speech-to-speech session's pipeline is made the same way
    (``realtime_plan``)."""

    def __init__(
        self,
        config: Mapping[str, JsonValue],
        speech: SpeechSettings,
        speech_keys: bool,
        health: ProviderHealth,
        on_switch: Callable[[Switch], None] | None,
        guard: Egress | None,
    ) -> None:
        self._config, self.speech, self.speech_keys = config, speech, speech_keys
        self._health, self._on_switch, self.guard = health, on_switch, guard
        self.first: dict[str, Endpoint] = {}  # each engine's first endpoint, by engine

    def stt(self, made: list[_Closing], usable: Usable[SttConfig] | None = None) -> Stt:
        """The STT of ``usable`` (default: the configuration's section and its plan)."""
        if usable is None:
            usable = self._usable("stt_config", SttConfig, self._parts("stt_config"))
        return self._engine(usable, lambda s: create_stt(s, self.guard), SttPlan, made)

    def llm(self, made: list[_Closing], usable: Usable[LlmConfig] | None = None) -> Llm:
        """The LLM of ``usable`` (default: the configuration's section and its plan)."""
        if usable is None:
            usable = self._usable("llm_config", LlmConfig, self._parts("llm_config"))

        def first(section: LlmConfig) -> Llm:
            return create_llm(section, self.guard)

        def later(section: LlmConfig) -> Llm:
            if section.provider in RULE_BASED:
                return PoliteClose.from_config(section)
            return first(section)

        return self._engine(usable, first, LlmPlan, made, later)

    def tts(self, made: list[_Closing], usable: Usable[TtsConfig] | None = None) -> Tts:
        """The TTS of ``usable`` (default: the configuration's section and its plan)."""
        # Imported here: the audio it resamples needs numpy, which the engine's import of
        # this module (through speech admission) does not load.
        from voicedock.pipeline.fallback_plans.tts import TtsPlan

        if usable is None:
            usable = self._usable("tts_config", TtsConfig, self._parts("tts_config"))
        return self._engine(usable, lambda s: create_tts(s, self.guard), TtsPlan, made)

    def realtime_plan(
        self, session: Endpoint, realtime: Mapping[str, JsonValue], made: list[_Closing]
    ) -> RealtimePlan | None:
        """The pipeline a speech-to-speech ``session`` goes on with, or None: its LLM the
        entries of the session's ``fallback_plan``, else of the operator's default LLM plan;
        its STT ``stt_config``, else the operator's; its voice ``tts_config``, else the
        session's ``say_voice``, else the operator's; each with its plan, else the operator's
        default plan of its engine. A pipeline the operator's default plan offers is the
        operator's, its STT included: where none of an engine's entries may be used (the
        operator's keys, under ``speech_keys`` False) the call has no pipeline."""
        own = isinstance(realtime.get(FALLBACK_PLAN), list)
        # Each LLM entry comes after the session: a rule-based one closes the call politely.
        models = [
            (section, endpoint, True)
            for section, endpoint, _ in self._usable(
                "llm_config", LlmConfig, self._plan_parts("llm_config", realtime)
            )
        ]
        stt_parts = self._parts("stt_config")
        if "stt_config" not in self._config:
            stt_parts[0] = ({"provider": self.speech.stt}, "stt_config", not own)
        tts_parts = self._parts("tts_config")
        if "tts_config" not in self._config:  # the voice of the verbatim texts
            say = json_object(realtime.get(SAY_VOICE)) or {"provider": self.speech.tts}
            tts_parts[0] = (say, f"llm_config.{SAY_VOICE}", False)
        hearing = self._usable("stt_config", SttConfig, stt_parts)
        voices = self._usable("tts_config", TtsConfig, tts_parts)
        if not (models and hearing and voices):
            return None
        stt, llm, tts = self.stt(made, hearing), self.llm(made, models), self.tts(made, voices)
        return RealtimePlan(
            session=session,
            stt=stt,
            llm=llm,
            tts=tts,
            to=models[0][1],
            endpoints=Endpoints(**self.first),  # the pipeline's engines, just made
            health=self._health,
            on_switch=self._on_switch,
        )

    def _engine(
        self,
        usable: Usable[SectionT],
        make: Callable[[SectionT], P],
        plan: Callable[[list[Entry[P]], ProviderHealth, Callable[[Switch], None] | None], P],
        made: list[_Closing],
        later: Callable[[SectionT], P] | None = None,
    ) -> P:
        """The providers of ``usable``, made in order (``later`` makes those after the first;
        default: ``make``): the one provider alone, or a ``plan`` of them all."""
        entries: list[Entry[P]] = []
        for section, endpoint, after_first in usable:
            provider = (later if after_first and later is not None else make)(section)
            made.append(provider)
            entries.append(Entry(endpoint, provider))
        self.first[entries[0].endpoint.kind] = entries[0].endpoint
        if len(entries) == 1:
            return entries[0].provider
        return plan(entries, self._health, self._on_switch)

    def _usable(self, key: str, kind: type[SectionT], parts: Parts) -> Usable[SectionT]:
        """The sections of ``parts`` the call may use, completed and typed, each with its
        endpoint and whether it comes after the first; an operator's entry is left out where
        it would take a key the call may not use, or is an endpoint tried before it."""
        usable: Usable[SectionT] = []
        for index, (part, where, operator) in enumerate(parts):
            holder = {} if part is None else {key: part}
            try:
                completed = _section(holder, key, self.speech, speech_keys=self.speech_keys)
            except ProviderConfigError:
                if operator:
                    continue  # the operator's key, which goes nowhere here
                raise
            if operator and not self.speech_keys and completed.get("api_key"):
                continue
            typed = decoded(kind, completed, where)
            endpoint = Endpoint(
                key.removesuffix("_config"),
                typed.provider,
                typed.base_url or "",
                getattr(typed, "model", None) or "",
            )
            if operator and any(tried == endpoint for _, tried, _ in usable):
                continue  # the section's own endpoint: tried already
            usable.append((typed, endpoint, index > 0))
        return usable

    def _parts(self, key: str) -> Parts:
        """The configuration's ``key`` section itself (None: the operator's engine), then its
        plan's entries, or the operator's default plan."""
        section = json_object(self._config.get(key))
        own = None if section is None else {k: v for k, v in section.items() if k != FALLBACK_PLAN}
        return [(own, key, False), *self._plan_parts(key, section)]

    def _plan_parts(self, key: str, section: Mapping[str, JsonValue] | None) -> Parts:
        """The entries of ``section``'s ``fallback_plan`` (written in ``key``), or without one
        the operator's default plan of the engine."""
        plan = None if section is None else section.get(FALLBACK_PLAN)
        if isinstance(plan, list):
            at = f"{key}.{FALLBACK_PLAN}"
            return [(e, f"{at}[{i}]", False) for i, e in enumerate(plan) if isinstance(e, dict)]
        try:
            default = operator_plan(key, self.speech)
        except BadRequest as exc:  # checked at start-up: a configuration changed since
            raise ProviderConfigError(exc.message) from None
        engine = key.removesuffix("_config")
        return [(e, f"speech.fallback_plans.{engine}[{i}]", True) for i, e in enumerate(default)]
