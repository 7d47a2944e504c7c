"""A call's speech providers: built from its assistant configuration, the organization's
referenced provider keys opened (in memory only: the call's stored snapshot keeps the
references), connecting through the node's egress guard. The whole set for an answered call;
the voice alone for a call that rings (its first message synthesized ahead)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec

from voicedock.calls.assistants.key_refs import KeyRefs
from voicedock.calls.assistants.snapshot import SECTIONS, provider_sections
from voicedock.calls.live.opening_language import call_opening_language
from voicedock.calls.live.providers import build_providers, build_tts
from voicedock.config import ByokSettings, SpeechSettings
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.domain.records import Call
from voicedock.egress import Egress
from voicedock.pipeline.fallback_plans.plan import Switch
from voicedock.pipeline.pools.provider_health import ProviderHealth
from voicedock.pipeline.providers.base import Tts
from voicedock.store.base import Store

if TYPE_CHECKING:
    from voicedock.calls.live.providers import SpeechProviders

ProvidersFactory = Callable[[AssistantConfig], Awaitable["SpeechProviders"]]


class CallSpeech:
    def __init__(
        self,
        store: Store,
        speech: SpeechSettings,
        byok: ByokSettings,
        egress: Egress,
        providers: ProvidersFactory | None = None,
        *,
        health: ProviderHealth | None = None,
    ) -> None:
        """``providers`` builds a call's STT/LLM/TTS (default: the registry's, from the
        assistant configuration, connecting through ``egress``); ``health``: the node's
        breakers, which the calls' fallback plans consult."""
        self._health = health
        self._store = store
        self._speech = speech
        self._byok = byok
        self.egress = egress
        self._providers = providers

    async def opening_language(self, call: Call) -> str | None:
        """The language ``call`` opens in (``calls/live/opening_language.py``)."""
        return await call_opening_language(self._store, call)

    async def keyed_config(self, call: Call) -> AssistantConfig:
        """The call's configuration with its organization's referenced provider keys opened
        (in memory only: the call's stored snapshot keeps the references)."""
        return await self.keyed(call.organization_id, call.assistant_config)

    async def keyed(self, organization_id: str, config: AssistantConfig) -> AssistantConfig:
        """``config`` (a call's, a squad member's) with the organization's referenced
        provider keys opened."""
        key_refs = KeyRefs(self._store, organization_id, self._byok, self._speech)
        sections = provider_sections(config)
        opened = await key_refs.opened(sections)
        if opened is sections:
            return config
        keys = {key: opened[key] for key in SECTIONS if opened.get(key) is not sections.get(key)}
        return msgspec.structs.replace(config, **keys)

    async def providers(
        self,
        assistant_config: AssistantConfig,
        on_switch: Callable[[Switch], None] | None = None,
    ) -> SpeechProviders:
        """Every provider the call speaks with; ``on_switch`` hears of each move of one of
        its fallback plans to the next entry."""
        if self._providers is not None:
            return await self._providers(assistant_config)
        return await build_providers(
            assistant_config,
            self._speech,
            self.egress,
            speech_keys=self._speech_keys,
            health=self._health,
            on_switch=on_switch,
            placed=True,
        )

    async def voice(self, assistant_config: AssistantConfig) -> Tts:
        """The call's TTS alone (no STT or LLM is needed to synthesize ahead); with a
        ``providers`` factory (tests), the TTS of what it makes, the rest closed."""
        if self._providers is None:
            return build_tts(
                assistant_config,
                self._speech,
                self.egress,
                speech_keys=self._speech_keys,
                placed=True,
            )
        providers = await self._providers(assistant_config)
        for other in (providers.stt, providers.llm, providers.realtime, providers.pipeline):
            if other is not None:
                with contextlib.suppress(Exception):
                    await other.aclose()
        return providers.tts

    @property
    def _speech_keys(self) -> bool:
        """Whether a call's section without a key of its own may use the operator's
        ``[speech]`` key: not where the operator requires organizations' own keys."""
        return self._byok.mode != "required"
