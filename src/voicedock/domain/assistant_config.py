"""An assistant's provider sections as types: what the speech engines are built from.

``stt_config``, ``tts_config`` and ``llm_config`` (a speech-to-speech assistant's: the realtime
session's, ``RealtimeConfig``) each hold the keys some provider of that kind reads. What an
organization may set in them, and within which bounds, is ``domain/tenant_provider_fields.py``'s
list; the host's keys (``model_path``, ``cache_dir``, ``device``...) come from the operator's
``[speech]`` section only (``calls/offline_speech.py``). A section is decoded into its type where
the call's providers are built (``pipeline/providers/section.py``): each provider reads the
fields it knows, with its own defaults for what the section leaves out.

``UNSET`` marks the keys whose absence and null mean two things: a Whisper ``language`` of null
detects the language (absent: English), a Deepgram ``endpointing_ms`` of null turns endpointing
off (absent: 300 ms).
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType


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


class RealtimeConfig(ProviderSection, kw_only=True, frozen=True, omit_defaults=True):
    """``llm_config`` of a speech-to-speech assistant: the realtime session, and the voice
    voicedock's own TTS says the verbatim texts in (``say_voice``)."""

    url: str | None = None  # the session's websocket (None: xAI's)
    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    sample_rate: int | None = None
    say_voice: TtsConfig | None = None
