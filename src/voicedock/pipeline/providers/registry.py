"""Create providers from their typed sections (``SttConfig(provider="offline")``...).

Factories are registered by name per kind (stt/llm/tts). The offline factories import
their heavy engines lazily, so importing this module never loads a model. The cloud ones
connect through the ``egress`` guard they are given (a call's providers always get one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from voicedock.domain.assistant_config import LlmConfig, SttConfig, TtsConfig
from voicedock.egress import Egress
from voicedock.pipeline.providers.base import Llm, ProviderConfigError, Stt, Tts

P = TypeVar("P")
S = TypeVar("S", SttConfig, TtsConfig, LlmConfig)
# A provider from its configuration section and the guard its connections pass (None: none).
Factory = Callable[[S, Egress | None], P]


class ProviderRegistry(Generic[P, S]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Factory[S, P]] = {}

    def register(self, name: str, factory: Factory[S, P]) -> None:
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, config: S, egress: Egress | None = None) -> P:
        name = config.provider
        if not name:
            raise ProviderConfigError(f"{self.kind}.provider is required")
        factory = self._factories.get(name)
        if factory is None:
            raise ProviderConfigError(
                f"{self.kind}.provider {name!r} is not one of {', '.join(self.names())}"
            )
        return factory(config, egress)


def _offline_stt(config: SttConfig, _egress: Egress | None = None) -> Stt:
    from voicedock.pipeline.providers.whisper.stt import WhisperStt

    return WhisperStt(config)


def _piper_tts(config: TtsConfig, _egress: Egress | None = None) -> Tts:
    from voicedock.pipeline.providers.piper_tts import PiperTts

    return PiperTts.from_config(config)


def _espeak_tts(config: TtsConfig, _egress: Egress | None = None) -> Tts:
    from voicedock.pipeline.providers.espeak_tts import EspeakTts

    return EspeakTts.from_config(config)


def _offline_tts(config: TtsConfig, _egress: Egress | None = None) -> Tts:
    """Piper when its voice is installed, else espeak-ng."""
    from voicedock.pipeline.providers.piper_tts import piper_available

    return _piper_tts(config) if piper_available() else _espeak_tts(config)


def _rule_based(config: LlmConfig, _egress: Egress | None = None) -> Llm:
    from voicedock.pipeline.providers.rule_based import RuleBasedPolicy

    return RuleBasedPolicy.from_config(config)


stt_registry: ProviderRegistry[Stt, SttConfig] = ProviderRegistry("stt")
llm_registry: ProviderRegistry[Llm, LlmConfig] = ProviderRegistry("llm")
tts_registry: ProviderRegistry[Tts, TtsConfig] = ProviderRegistry("tts")

stt_registry.register("offline", _offline_stt)
stt_registry.register("faster-whisper", _offline_stt)
tts_registry.register("offline", _offline_tts)
tts_registry.register("piper", _piper_tts)
tts_registry.register("espeak-ng", _espeak_tts)
# The rule-based policy's names (later in a fallback plan: its polite close).
RULE_BASED = frozenset({"offline", "rule-based", "rule_based"})
llm_registry.register("offline", _rule_based)
llm_registry.register("rule-based", _rule_based)


# Configuration files spell engine names with underscores (speech.stt = "faster_whisper").
stt_registry.register("faster_whisper", _offline_stt)
tts_registry.register("espeak_ng", _espeak_tts)
llm_registry.register("rule_based", _rule_based)


# Cloud clients: imported lazily so an offline deployment never loads them.
def _openai_llm(config: LlmConfig, egress: Egress | None = None) -> Llm:
    from voicedock.pipeline.providers.openai_compat import OpenAiCompatLlm

    return OpenAiCompatLlm.from_config(config, egress=egress)


def _openai_stt(config: SttConfig, egress: Egress | None = None) -> Stt:
    from voicedock.pipeline.providers.openai_audio import OpenAiStt

    return OpenAiStt(config, egress=egress)


def _deepgram_stt(config: SttConfig, egress: Egress | None = None) -> Stt:
    from voicedock.pipeline.providers.deepgram import DeepgramStt

    return DeepgramStt(config, egress=egress)


def _openai_tts(config: TtsConfig, egress: Egress | None = None) -> Tts:
    from voicedock.pipeline.providers.openai_audio import OpenAiTts

    return OpenAiTts(config, egress=egress)


def _elevenlabs_tts(config: TtsConfig, egress: Egress | None = None) -> Tts:
    from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts

    return ElevenLabsTts(config, egress=egress)


for _name in ("openai", "mistral", "xai", "ollama", "openai-compatible"):
    llm_registry.register(_name, _openai_llm)  # "openai-compatible" needs base_url
stt_registry.register("openai", _openai_stt)
stt_registry.register("deepgram", _deepgram_stt)
tts_registry.register("openai", _openai_tts)
tts_registry.register("elevenlabs", _elevenlabs_tts)


def create_stt(config: SttConfig, egress: Egress | None = None) -> Stt:
    return stt_registry.create(config, egress)


def create_llm(config: LlmConfig, egress: Egress | None = None) -> Llm:
    return llm_registry.create(config, egress)


def create_tts(config: TtsConfig, egress: Egress | None = None) -> Tts:
    return tts_registry.create(config, egress)
