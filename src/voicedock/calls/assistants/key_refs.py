"""Assistants' references to their organization's provider keys (``api_key_ref``).

A provider section (``stt_config``, ``tts_config``, ``llm_config``, ``llm_config.say_voice``)
may name one of the organization's stored keys (``/provider-keys``) instead of carrying an
``api_key``. The named keys are checked when an assistant is saved and when a call is placed
(``KeyRefs.check``: the key exists, is for that provider, and the operator's ``[byok] mode``
allows it); a call opens them when its providers are built (``KeyRefs.opened``), so the
key itself is only ever in memory: never in the assistant, the call's snapshot or a log line.

``[byok] mode``: ``allowed`` (the default); ``off`` — a reference is a 403 and fails a call
already placed; ``required`` — every cloud engine a call reaches (``engines``: the sections
the configuration names, and those it leaves to the operator's ``[speech]`` engines, the
realtime session and the voice of a speech-to-speech assistant included) must name a key of
the organization (400 ``Provider key required`` when saved or placed: the node's policy
refuses it), and a call already placed whose cloud engine has no key of its own fails rather
than use the operator's ``[speech]`` key. The call's LLM also writes its transfer briefing
and its analysis: they reach no other engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from voicedock.calls.assistants.config import SAY_VOICE
from voicedock.calls.assistants.providers import NEEDS_STT_AND_TTS, SPEECH_TO_SPEECH
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.json import JsonValue, json_object
from voicedock.domain.key_box import KeyBoxError, open_provider_key
from voicedock.domain.tenant_provider_fields import API_KEY_REF, FALLBACK_PLAN, cloud_providers
from voicedock.errors import BadRequest, Forbidden, StoreError, Unprocessable
from voicedock.pipeline.providers.base import ProviderConfigError, ProviderUnavailableError
from voicedock.store.base import Store

SECTIONS = ("stt_config", "tts_config", "llm_config")
_LLM = "llm_config"
_SAY = f"{_LLM}.{SAY_VOICE}"
# A key stored for one provider also serves these (the same account).
_SAME_ACCOUNT = {"xai_realtime": "xai", "openai-compatible": "openai"}


@dataclass(frozen=True, slots=True)
class Engine:
    """One engine a call reaches: where its section is in the configuration, its provider,
    and the section (empty where the configuration leaves it out: ``left_out``, the
    operator's ``[speech]`` engine serves it)."""

    where: str
    provider: str
    section: Mapping[str, JsonValue]
    left_out: bool = False
    plan: tuple[str, int] | None = None  # an entry of this section's fallback plan, at this index

    @property
    def cloud(self) -> bool:
        """A provider whose account is reached with an API key
        (``domain/tenant_provider_fields.py``)."""
        return self.provider in cloud_providers()


def engines(
    config: Mapping[str, JsonValue], speech: SpeechSettings, *, partial: bool = False
) -> list[Engine]:
    """Every engine a call of ``config`` reaches, as its providers are built
    (``calls/live/providers.py``): a pipeline's STT, LLM and TTS; a speech-to-speech
    assistant's realtime session (its ``provider``, whatever ``llm_config`` names), the
    voice that speaks its verbatim texts (``llm_config.say_voice``) and, with a fallback
    plan, the pipeline it goes on with (the plan's LLMs, ``stt_config``, ``tts_config``). A
    section the configuration leaves out is the operator's ``[speech]`` engine (``partial``:
    not listed, as for an organization's defaults, which an assistant completes)."""
    top = config.get("provider")
    llm = _mapping(config.get(_LLM))
    found: list[tuple[str, str, Mapping[str, JsonValue] | None, tuple[str, int] | None]] = []
    llm_default = str(top) if top in NEEDS_STT_AND_TTS else speech.llm
    defaults = {"stt_config": speech.stt, "tts_config": speech.tts, _LLM: llm_default}
    pipeline: tuple[str, ...] = SECTIONS
    if top in SPEECH_TO_SPEECH:
        say = _mapping(llm.get(SAY_VOICE)) if llm is not None else None
        found += [(_LLM, str(top), llm, None), (_SAY, _named(say, speech.tts), say, None)]
        for index, (at, entry) in enumerate(_plan_entries(_LLM, llm)):
            found.append((at, _named(entry, speech.llm), entry, (_LLM, index)))
        # The pipeline its plan goes on with: its STT (left out: the operator's), and its
        # TTS where one is named (left out: the say voice above).
        pipeline = ()
        if llm is not None and FALLBACK_PLAN in llm:
            pipeline = ("stt_config", "tts_config") if "tts_config" in config else ("stt_config",)
    for where in pipeline:
        section = _mapping(config.get(where))
        found.append((where, _named(section, defaults[where]), section, None))
        for index, (at, entry) in enumerate(_plan_entries(where, section)):
            found.append((at, _named(entry, defaults[where]), entry, (where, index)))
    return [
        Engine(where, provider, section or {}, left_out=section is None, plan=plan)
        for where, provider, section, plan in found
        if section is not None or not partial
    ]


def _mapping(value: object) -> Mapping[str, JsonValue] | None:
    return value if isinstance(value, Mapping) else None


def _named(section: Mapping[str, JsonValue] | None, default: str) -> str:
    name = section.get("provider") if section is not None else None
    return str(name or default)


def _plan_entries(
    where: str, section: Mapping[str, JsonValue] | None
) -> Iterator[tuple[str, Mapping[str, JsonValue]]]:
    """The entries of a section's fallback plan, each with where it is."""
    plan = section.get(FALLBACK_PLAN) if section is not None else None
    if isinstance(plan, list):
        for index, entry in enumerate(plan):
            if isinstance(entry, Mapping):
                yield f"{where}.{FALLBACK_PLAN}[{index}]", entry


def _sections(config: Mapping[str, JsonValue]) -> Iterator[tuple[str, Mapping[str, JsonValue]]]:
    """Every provider section ``config`` holds, reached or not (what may name a key)."""
    for key in SECTIONS:
        section = config.get(key)
        if isinstance(section, Mapping):
            yield key, section
            inner = section.get(SAY_VOICE) if key == _LLM else None
            if isinstance(inner, Mapping):
                yield f"{key}.{SAY_VOICE}", inner
            yield from _plan_entries(key, section)


def fits(key_provider: str, section_provider: str) -> bool:
    return key_provider in (section_provider, _SAME_ACCOUNT.get(section_provider))


@dataclass(frozen=True, slots=True)
class KeyRefs:
    """One organization's provider keys as its configurations reference them, under the
    operator's ``[byok]`` mode and ``[speech]`` engines."""

    store: Store
    organization_id: str
    byok: ByokSettings
    speech: SpeechSettings

    async def check(self, config: Mapping[str, JsonValue], *, partial: bool = False) -> None:
        """The keys a (resolved) configuration names, as its calls will use them: 403 when
        the operator forbids references; 422 for a reference to no key of the organization
        (or a key for another provider); 400 for, with ``required``, a cloud engine of
        ``engines`` without one (``partial``: only the sections the configuration names)."""
        byok = self.byok
        for engine in engines(config, self.speech, partial=partial):
            where, provider = engine.where, engine.provider
            name = engine.section.get(API_KEY_REF)
            if name is None:
                if byok.mode == "required" and engine.cloud:
                    left_out = " (left out: the operator's engine)" if engine.left_out else ""
                    raise BadRequest(
                        f"{where}.{API_KEY_REF} is required: the operator requires the "
                        f"organization's own key for {provider}{left_out} (see /provider-keys)",
                        error="Provider key required",
                    )
                continue
            if byok.mode == "off":
                raise Forbidden(
                    f"{where}.{API_KEY_REF}: the operator does not allow organizations' own "
                    "provider keys",
                    error="Provider keys disabled",
                )
            key = await self.store.get_provider_key(self.organization_id, name=str(name))
            if key is None:
                raise Unprocessable(f"{where}.{API_KEY_REF}: no provider key named {name!r}")
            if not fits(key.provider, provider):
                raise Unprocessable(
                    f"{where}.{API_KEY_REF}: the key {name!r} is for {key.provider}, not {provider}"
                )

    async def opened(
        self, config: Mapping[str, JsonValue], *, partial: bool = False
    ) -> Mapping[str, JsonValue]:
        """``config`` with the reference of each engine it reaches replaced by the key it
        names, opened (a copy: the given configuration is not changed). ``ProviderConfigError``
        when a key cannot be used, or, with ``required``, a cloud engine has no key of its own
        (``partial``: only the sections ``config`` names, as ``engines``)."""
        required = self.byok.mode == "required"
        reached = engines(config, self.speech, partial=partial)
        if not required and not any(API_KEY_REF in e.section for e in reached):
            return config
        out = dict(config)
        for engine in reached:  # llm_config before its say_voice
            where, section = engine.where, engine.section
            name = section.get(API_KEY_REF)
            if name is None:
                if required and engine.cloud and not section.get("api_key"):
                    raise ProviderConfigError(
                        f"{where}: the operator requires the organization's own "
                        f"{engine.provider} key"
                    )
                continue
            opened = {k: v for k, v in section.items() if k != API_KEY_REF}
            opened["api_key"] = await self._open(str(name), where)
            if where == _SAY:
                out[_LLM] = {**(json_object(out[_LLM]) or {}), SAY_VOICE: opened}
            elif engine.plan is not None:  # after its section
                key, index = engine.plan
                holder = json_object(out[key]) or {}
                plan = holder.get(FALLBACK_PLAN)
                entries: list[JsonValue] = list(plan) if isinstance(plan, list) else []
                entries[index] = opened
                out[key] = {**holder, FALLBACK_PLAN: entries}
            else:
                out[where] = opened  # its say_voice and plan, if any, come next
        return out

    async def _open(self, name: str, where: str) -> str:
        if self.byok.mode == "off":
            raise ProviderConfigError(f"{where}: the operator does not allow provider keys")
        try:
            key = await self.store.get_provider_key(self.organization_id, name=name)
        except StoreError as exc:  # the call cannot have its key now: it fails as unprovided
            raise ProviderUnavailableError(f"{where}: provider key not readable: {exc}") from None
        if key is None:
            raise ProviderConfigError(f"{where}: no provider key named {name!r}")
        try:
            return open_provider_key(self.byok, self.organization_id, key.id, key.sealed)
        except KeyBoxError as exc:
            raise ProviderConfigError(str(exc)) from None


def references(config: Mapping[str, JsonValue], name: str) -> bool:
    """Whether ``config`` references the provider key ``name``."""
    return any(section.get(API_KEY_REF) == name for _, section in _sections(config))
