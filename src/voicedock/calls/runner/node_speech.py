"""The speech work every call of the node shares, owned by the runner, made before the engine
(which asks its admission control) and closed after the calls' records:

* the synthesis pool and cache (``[speech] presynthesis``, default on;
  ``pipeline/speaking/synthesis.py``): every answered call's local TTS goes through them, and a
  call's first message is synthesized there while it rings (``presynthesis.py``); the voices'
  previews take their spare workers;
* the recognition pool (``[speech] recognition_pool``, default on;
  ``pipeline/hearing/recognition.py``), through which every answered call's offline Whisper
  transcribes, finals before interims, and the ``SpeechAdmission`` that refuses new calls while
  transcriptions wait too long for it (``calls/speech_admission.py``);
* the providers' health (``pipeline/pools/provider_health.py``): one breaker per provider endpoint,
  which every call's fallback plans consult, so a failing provider is skipped by the node's
  calls together for its cool-down;
* the schema workers (``pipeline/analysis/schema_checks.py``): what an assistant's analysis plan
  extracts after a call is checked against the organization's schema there, in worker processes each
  killed and replaced at a deadline, queues per organization served in turn.

``pooled(providers, organization)`` puts a call's local engines on those pools.

``start(warm_up=True)`` loads the default speech models and runs each once, so the first call
is not slower than the tenth: the voice before it returns (at most ``WARM_UP_WAIT_S``), the STT
in the background, and the schema workers. The models are the process's (loaded once, shared by
every runner in it): one that already ran in this process is warm, and a later start (a node
restarted in place, the services of a test process) skips it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import msgspec

from voicedock.aio import Supervisor
from voicedock.calls.offline_speech import operator_stt, operator_tts, recognition_threads
from voicedock.calls.speech_admission import SpeechAdmission
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.egress import Egress
from voicedock.pipeline.analysis.schema_checks import SchemaChecks
from voicedock.pipeline.fallback_plans.stt import SttPlan
from voicedock.pipeline.fallback_plans.tts import TtsPlan
from voicedock.pipeline.hearing.recognition import NodeRecognition
from voicedock.pipeline.hearing.turn_detection import predict_in_thread
from voicedock.pipeline.hearing.turn_model import installed as turn_model_installed
from voicedock.pipeline.pools.provider_health import ProviderHealth
from voicedock.pipeline.pools.synthesis_cache import SynthesisCache
from voicedock.pipeline.pools.worker_pool import WorkerPool
from voicedock.pipeline.providers.base import Stt, Tts
from voicedock.pipeline.providers.registry import create_stt, create_tts
from voicedock.pipeline.speaking.synthesis import NodeSynthesis

if TYPE_CHECKING:  # the audio pipeline is imported when the first call is answered
    from voicedock.calls.live.conversation import SpeechProviders

log = logging.getLogger("voicedock.calls")

# Start-up waits this long at most for the default voice to be loaded and run once.
WARM_UP_WAIT_S = 30.0
# The speech models this process has loaded and run once: the operator's section of each
# engine (its kind and settings, which name the process-wide model), and the turn model's.
_warm: set[bytes] = set()
_TURN_MODEL = b"turn model"


class NodeSpeech:
    def __init__(self, speech: SpeechSettings, *, previews: int = 0) -> None:
        """``previews``: the voices' previews' spare synthesis workers (``[limits]
        previews_per_node``)."""
        self._speech = speech
        # The node's synthesis pool and cache (None: [speech] presynthesis = false, the
        # greeting synthesized after the answer by the call's own TTS).
        self.synthesis: NodeSynthesis | None = None
        if speech.presynthesis:
            self.synthesis = NodeSynthesis(
                WorkerPool(
                    speech.synthesis_workers or None,
                    name="synthesis",
                    max_waiting=speech.synthesis_queue,
                    max_spare=previews,  # previews' sentences
                ),
                SynthesisCache(speech.synthesis_cache_mb * 1024 * 1024),
            )
        # The node's recognition pool (every call's offline STT, finals first) and the
        # admission control reading it (None: [speech] recognition_pool = false).
        self.recognition: NodeRecognition | None = None
        self.admission: SpeechAdmission | None = None
        if speech.recognition_pool:
            workers, _threads = recognition_threads(speech)
            self.recognition = NodeRecognition(
                WorkerPool(workers, name="recognition"),
                admission_wait_s=speech.admission_wait_ms / 1000,
            )
            self.admission = SpeechAdmission(self.recognition, speech)
        # The node's schema workers: every call's analysis checks the fields its model
        # extracted there, in processes killed at a deadline, fair between organizations.
        self.schema_checks = SchemaChecks()
        # The node's breakers, one per provider endpoint its calls' plans name.
        self.provider_health = ProviderHealth()
        self._warm_ups = Supervisor("speech warm-up", log)

    async def start(self, egress: Egress, *, warm_up: bool = False) -> None:
        """With ``warm_up``: the default voice loaded and run once before this returns (at
        most ``WARM_UP_WAIT_S``: the service connects the PBX after, so the first call's
        greeting never waits behind it), the STT in the background (a caller speaks after the
        greeting; Whisper may take long to assemble on a first start), the turn model in the
        background, and the schema workers that check what the calls' analyses extract."""
        await self._warm_ups.start()
        if not warm_up:
            return
        speech = self._speech

        def voice() -> tuple[TtsConfig, Tts]:
            config = operator_tts(speech.tts, speech)
            return config, create_tts(config, egress.for_providers())

        def ears() -> tuple[SttConfig, Stt]:
            config = operator_stt(speech.stt, speech)
            return config, create_stt(config, egress.for_providers())

        voice_warm = self._warm_ups.spawn(self._warm_up(speech.tts, voice))
        if voice_warm is not None:
            await asyncio.wait({voice_warm}, timeout=WARM_UP_WAIT_S)  # else goes on
        self._warm_ups.spawn(self._warm_up(speech.stt, ears))
        if _TURN_MODEL not in _warm and turn_model_installed():
            self._warm_ups.spawn(self._warm_up_turn_model())
        await self.schema_checks.start()  # its workers start at the lowest priority

    def pooled(self, providers: SpeechProviders, organization_id: str) -> SpeechProviders:
        """A call's local engines through the node's pools: a local voice through the
        synthesis pool, Whisper, its language detection and the turn model through the
        recognition pool (a speech-to-speech call's pipeline's too)."""
        synthesis, recognition = self.synthesis, self.recognition
        if synthesis is not None:
            voice = partial(synthesis.speech_for, organization=organization_id)
            providers = dataclasses.replace(providers, tts=_pooled_tts(providers.tts, voice))
        if recognition is not None and providers.stt is not None:
            stt = _pooled_stt(providers.stt, recognition.speech_for)
            providers = dataclasses.replace(providers, stt=stt)
        if recognition is not None and providers.predict_turn is not None:
            providers = dataclasses.replace(providers, predict_turn=recognition.predict_turn)
        if recognition is not None and providers.languages is not None:
            providers.languages.detected_by(recognition.detect_language)
        if (pipeline := providers.pipeline) is not None:
            if synthesis is not None:
                pipeline = dataclasses.replace(pipeline, tts=_pooled_tts(pipeline.tts, voice))
            if recognition is not None:
                stt = _pooled_stt(pipeline.stt, recognition.speech_for)
                pipeline = dataclasses.replace(pipeline, stt=stt)
            providers = dataclasses.replace(providers, pipeline=pipeline)
        return providers

    async def _warm_up_turn_model(self) -> None:
        """The turn model loaded and run once on a second of silence (in a thread)."""
        try:
            await predict_in_thread(bytes(2 * 8000), 8000)
        except Exception as exc:  # noqa: BLE001 - the calls fall back to silence; start-up goes on
            log.warning("turn model not warmed up: %s", type(exc).__name__)
        else:
            _warm.add(_TURN_MODEL)

    async def _warm_up(
        self, engine: str, create: Callable[[], tuple[SttConfig | TtsConfig, Stt | Tts]]
    ) -> None:
        """The engine's model loaded and run once, unless it already ran in this process."""
        try:
            config, provider = create()
            key = type(config).__name__.encode() + msgspec.json.encode(config)
            try:
                warm = getattr(provider, "warm_up", None)
                if warm is not None and key not in _warm:
                    await warm()  # loaded, and run once (Piper's first synthesis is slower)
                    _warm.add(key)
            finally:
                await provider.aclose()
        except Exception as exc:  # noqa: BLE001 - a call will report it; start-up goes on
            log.warning("speech %s not warmed up: %s", engine, type(exc).__name__)

    async def aclose(self) -> None:
        """Wait for the warm-up, then close the pools and the schema workers."""
        try:
            await self._warm_ups.drain()
        finally:
            await self._warm_ups.aclose()
            if self.synthesis is not None:
                await self.synthesis.pool.aclose()
            if self.recognition is not None:
                await self.recognition.aclose()
            await self.schema_checks.aclose()


def _pooled_tts(tts: Tts, voice: Callable[[Tts], Tts]) -> Tts:
    return tts.mapped(voice) if isinstance(tts, TtsPlan) else voice(tts)


def _pooled_stt(stt: Stt, hear: Callable[[Stt], Stt]) -> Stt:
    return stt.mapped(hear) if isinstance(stt, SttPlan) else hear(stt)
