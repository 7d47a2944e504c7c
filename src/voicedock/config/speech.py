"""The node's speech engines (``[speech]``): which engines, the host's side of the offline
ones, the operator's provider keys, the synthesis and recognition pools, and how a call hears
its own echo (``[speech.echo]``), the end of a caller's turn (``[speech.endpointing]``), which
voice activity detector hears the caller (``[speech.vad]``), whether the caller's words decide
a barge-in (``[speech.barge_in]``), whether the caller's audio is denoised
(``[speech.noise_suppression]``) and what takes over an engine that fails
(``[speech.fallback_plans]``)."""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.config.table_types import REFUSED, Table, one_of
from voicedock.domain.assistant_config import (
    TURN_DETECTIONS,
    TURN_SILENCE,
    LlmConfig,
    SttConfig,
    TtsConfig,
)
from voicedock.domain.backchannels import DEFAULT_BACKCHANNELS
from voicedock.domain.json import JsonObject
from voicedock.domain.tenant_provider_fields import FALLBACK_PLAN_MAX
from voicedock.errors import ConfigError

WHISPER_DEVICES = ("cpu", "cuda", "auto")
WHISPER_COMPUTE_TYPES = (
    "default", "auto", "int8", "int8_float32", "int8_float16", "int8_bfloat16",
    "int16", "float16", "bfloat16", "float32",
)  # fmt: skip

# Where the "ollama" LLM engine connects when its section names no base_url (Ollama's own
# default): allowed to providers when it is the operator's [speech] llm.
OLLAMA_BASE_URL = "http://127.0.0.1:11434/v1"

Workers = Annotated[int, Meta(ge=0, le=256)]


class EchoSettings(Table):
    """[speech.echo]: the assistant's own voice heard back (docs/speech.md)."""

    enabled: bool = True
    max_delay_ms: Annotated[int, Meta(ge=1, le=2000)] = 600  # longest echo path looked for
    # Match with the audio sent from which inbound audio is echo.
    correlation: Annotated[float, Meta(gt=0, lt=1)] = 0.85
    # Echo removed, below which someone talks over it.
    min_cancel_db: Annotated[float, Meta(ge=0, le=40)] = 8.0


Silence = Annotated[int, Meta(ge=100, le=5000)]


class EndpointingSettings(Table):
    """[speech.endpointing]: when the caller's turn is over (docs/speech.md)."""

    # adaptive | fixed (always end_silence_ms)
    mode: Annotated[str, one_of(("adaptive", "fixed"), "must be adaptive or fixed")] = "adaptive"
    end_silence_ms: Silence = 600  # silence that ends a turn (adaptive: when its text is unclear)
    complete_silence_ms: Silence = 450  # adaptive: the turn reads as a finished sentence
    incomplete_silence_ms: Silence = 1000  # adaptive: the turn trails off ("and", "um", ",")
    # How an assistant that leaves turn_detection out decides turns: "silence" or "model" (the
    # turn model, where it is installed; docs/speech.md says why it is not the default yet)
    turn_detection: Annotated[
        str, one_of(TURN_DETECTIONS, "must be " + " or ".join(TURN_DETECTIONS))
    ] = TURN_SILENCE
    # turn_detection "model": silence after a turn the turn model heard finished, and the
    # bound after one it heard unfinished (or while its answer is awaited)
    model_floor_ms: Silence = 300
    model_wait_ms: Silence = 2000

    def check(self) -> None:
        if not self.complete_silence_ms <= self.end_silence_ms <= self.incomplete_silence_ms:
            raise ConfigError(
                "speech.endpointing.end_silence_ms",
                "must lie between complete_silence_ms and incomplete_silence_ms",
            )
        if self.model_floor_ms > self.model_wait_ms:
            raise ConfigError("speech.endpointing.model_floor_ms", "must not exceed model_wait_ms")


class VadSettings(Table):
    """[speech.vad]: the voice activity detector of every call's caller side (docs/speech.md)."""

    # webrtc (a few µs per frame) | silero (a small neural network, faster-whisper's model:
    # better in noise, about a hundred times the CPU; calls at 8 or 16 kHz)
    engine: Annotated[str, one_of(("webrtc", "silero"), "must be webrtc or silero")] = "webrtc"
    # silero: a window's speech probability from which it is speech
    silero_threshold: Annotated[float, Meta(gt=0, lt=1)] = 0.5


Backchannel = Annotated[
    str, Meta(min_length=1, max_length=40, extra={REFUSED: "must be 1-40 characters"})
]


class BargeInSettings(Table):
    """[speech.barge_in]: whether the caller's words decide a barge-in, and which words do
    not stop the assistant (docs/speech.md)."""

    # The default of the assistants that leave barge_in_on_words out (pipeline calls): the
    # caller's speech over the assistant pauses it, the words decide.
    on_words: bool = False
    # A sound with less of it voiced (pitched, as a voice is) is a noise (a cough, a door, a
    # keyboard), whatever the recognizer made of it.
    min_voiced_ms: Annotated[int, Meta(ge=0, le=2000)] = 60
    # Backchannels by language (a call's STT language, its primary tag): a language given
    # here replaces its built-in list; a call without a language hears all of them.
    backchannels: dict[str, Annotated[list[Backchannel], Meta(max_length=200)]] = msgspec.field(
        default_factory=dict
    )

    def check(self) -> None:
        for language in self.backchannels:
            if re.fullmatch("[a-z]{2,3}", language) is None:
                raise ConfigError(
                    f"speech.barge_in.backchannels.{language}",
                    "must be a language's primary tag (en, de)",
                )

    def lists(self) -> dict[str, tuple[str, ...]]:
        """Each language's backchannels: the built-in lists, with the operator's over them."""
        given = {language: tuple(words) for language, words in self.backchannels.items()}
        return {**DEFAULT_BACKCHANNELS, **given}


class NoiseSuppressionSettings(Table):
    """[speech.noise_suppression]: the caller's audio denoised before voice activity detection
    and recognition (RNNoise; docs/speech.md): for the calls whose assistant leaves
    ``noise_suppression`` out. Off by default: it costs CPU on every call
    (docs/performance/sizing.md)."""

    enabled: bool = False


# An entry of the operator's default plan: a section as an assistant's (its keys, each checked
# as an organization's at start-up: calls/assistants/configured.py), any other key refused.
class LlmPlanEntry(LlmConfig, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class SttPlanEntry(SttConfig, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


class TtsPlanEntry(TtsConfig, forbid_unknown_fields=True, frozen=True, kw_only=True):
    pass


_PLAN = Meta(max_length=FALLBACK_PLAN_MAX, extra={REFUSED: f"at most {FALLBACK_PLAN_MAX} entries"})


class FallbackPlansSettings(Table):
    """[speech.fallback_plans]: the operator's default fallback plan per engine, used by the
    calls whose assistant gives its engine no ``fallback_plan`` of its own (docs/speech.md)."""

    llm: Annotated[list[LlmPlanEntry], _PLAN] = msgspec.field(default_factory=list)
    stt: Annotated[list[SttPlanEntry], _PLAN] = msgspec.field(default_factory=list)
    tts: Annotated[list[TtsPlanEntry], _PLAN] = msgspec.field(default_factory=list)

    def engines(self) -> dict[str, list[JsonObject]]:
        """Each engine's plan by its section's key (``llm_config``...), as sections."""
        return {
            "stt_config": [_section(entry) for entry in self.stt],
            "llm_config": [_section(entry) for entry in self.llm],
            "tts_config": [_section(entry) for entry in self.tts],
        }

    def check(self) -> None:
        for engine in ("llm", "stt", "tts"):
            entries: list[SttConfig] | list[LlmConfig] | list[TtsConfig] = getattr(self, engine)
            for index, entry in enumerate(entries):
                where = f"speech.fallback_plans.{engine}[{index}]"
                if not entry.provider:
                    raise ConfigError(f"{where}.provider", "required: the entry's engine")
                if entry.api_key_ref is not None:
                    raise ConfigError(
                        f"{where}.api_key_ref",
                        "an organization's key reference; an operator's entry gives api_key",
                    )


def _section(entry: msgspec.Struct) -> JsonObject:
    section = msgspec.to_builtins(entry)
    assert isinstance(section, dict)
    return section


class SpeechSettings(Table):
    stt: str = "faster_whisper"
    tts: str = "piper"
    llm: str = "rule_based"
    # The host's side of the offline engines: only set here, never by an assistant
    # (domain/tenant_provider_fields.py lists what an organization may set per assistant).
    whisper_model_path: str = ""  # empty: the packaged Whisper-base weights
    whisper_cache_dir: str = ""  # where those are assembled (empty: ~/.cache/voicedock)
    whisper_device: Annotated[str, one_of(WHISPER_DEVICES)] = "cpu"
    whisper_compute_type: Annotated[str, one_of(WHISPER_COMPUTE_TYPES)] = "int8"
    whisper_cpu_threads: Workers = 0  # 0: CTranslate2's default
    piper_model_path: str = ""  # your own Piper voice (.onnx; empty: the packaged voice)
    # The first message synthesized while the call rings, through the node's synthesis cache
    # and pool (false: synthesized after the answer, no cache; pipeline/speaking/synthesis.py).
    presynthesis: bool = True
    # Offline voices' audio kept for repeated texts.
    synthesis_cache_mb: Annotated[int, Meta(ge=0, le=65536)] = 64
    synthesis_workers: Workers = 0  # syntheses at once (0: the machine's cores)
    # Sentences waiting for the pool beyond which nothing more is synthesized ahead (the
    # greeting is then synthesized after the answer); audio a caller waits for always queues.
    synthesis_queue: Annotated[int, Meta(ge=0, le=1_000_000)] = 500
    # Offline recognition at load (docs/speech.md): every call's Whisper work in one pool of
    # workers on one model, finals before interims (false: a thread per transcription).
    recognition_pool: bool = True
    recognition_workers: Workers = 0  # transcriptions at once (0: the machine's cores)
    # New calls with offline STT are refused (REST 503, inbound rejected, campaigns wait)
    # while transcriptions wait longer than this for a worker (0: never refused).
    admission_wait_ms: Annotated[int, Meta(ge=0, le=60_000)] = 250
    openai_base_url: str = "https://api.openai.com/v1"
    openai_api_key: str = ""
    mistral_base_url: str = "https://api.mistral.ai/v1"
    mistral_api_key: str = ""
    deepgram_api_key: str = ""
    elevenlabs_api_key: str = ""
    xai_api_key: str = ""
    echo: EchoSettings = msgspec.field(default_factory=EchoSettings)
    endpointing: EndpointingSettings = msgspec.field(default_factory=EndpointingSettings)
    vad: VadSettings = msgspec.field(default_factory=VadSettings)
    barge_in: BargeInSettings = msgspec.field(default_factory=BargeInSettings)
    noise_suppression: NoiseSuppressionSettings = msgspec.field(
        default_factory=NoiseSuppressionSettings
    )
    fallback_plans: FallbackPlansSettings = msgspec.field(default_factory=FallbackPlansSettings)
