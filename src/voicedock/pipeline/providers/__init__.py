"""Speech and language providers behind the `Stt`, `Llm` and `Tts` seams."""

from voicedock.pipeline.providers.base import (
    IncrementalStt,
    Llm,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    StreamingStt,
    Stt,
    SttStream,
    Tts,
)
from voicedock.pipeline.providers.registry import (
    ProviderRegistry,
    create_llm,
    create_stt,
    create_tts,
    llm_registry,
    stt_registry,
    tts_registry,
)

__all__ = [
    "IncrementalStt",
    "Llm",
    "ProviderConfigError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderRegistry",
    "ProviderResponseError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "StreamingStt",
    "Stt",
    "SttStream",
    "Tts",
    "create_llm",
    "create_stt",
    "create_tts",
    "llm_registry",
    "stt_registry",
    "tts_registry",
]
