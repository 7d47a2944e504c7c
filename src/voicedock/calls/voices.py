"""The voices an organization's assistants may speak with, and a voice's preview.

``list_voices`` is the node's list (``pipeline/voices.py``: the installed Piper and espeak-ng
voices, read in a worker thread; the cloud voices the operator configured, ElevenLabs' asked of
the operator's account through the egress guard). ``preview`` speaks
a short text in one of them through the node's own synthesis path: a local voice's sentences
through the node's synthesis pool and cache (``pipeline/synthesis.py``, scoped to the
organization as a call's are), a cloud voice through its client with the operator's key. The
audio comes back as a WAV at the voice's own sample rate.

A voice id from a request is only ever looked up in the list: it never names a file, a
command line or a URL.
"""

from __future__ import annotations

import asyncio

from voicedock.calls.live.providers import voice_tts
from voicedock.config import Settings
from voicedock.egress.settings import egress_guard
from voicedock.errors import ApiError, NotFound, ProviderError
from voicedock.pipeline.providers._http import pcm16_wav
from voicedock.pipeline.synthesis import NodeSynthesis
from voicedock.pipeline.voices import Voice as Voice  # the records this floor answers
from voicedock.pipeline.voices import elevenlabs_voices, node_voices

PREVIEW_TEXT_MAX = 300  # characters of a preview's text
PREVIEW_RETRY_AFTER_S = 5


class VoiceUnavailable(ApiError):
    """The voice's engine failed to speak the preview (a cloud provider's error, a missing
    engine): the request itself was fine."""

    status = 503
    error = "Voice unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(PREVIEW_RETRY_AFTER_S)}


async def local_voices(settings: Settings) -> list[Voice]:
    """The voices the node knows without asking a provider (blocking reads in a thread)."""
    return await asyncio.to_thread(node_voices, settings.speech)


async def list_voices(settings: Settings) -> list[Voice]:
    voices = await local_voices(settings)
    key = settings.speech.elevenlabs_api_key
    if key:
        voices += await elevenlabs_voices(key, egress_guard(settings).for_providers())
    return voices


async def find_voice(settings: Settings, voice_id: str) -> Voice:
    for voice in await list_voices(settings):
        if voice.id == voice_id:
            return voice
    raise NotFound("no voice with this id on this node", error="Voice not found")


async def preview(
    voice: Voice,
    text: str,
    *,
    settings: Settings,
    organization: str,
    synthesis: NodeSynthesis | None,
) -> bytes:
    """``text`` spoken in ``voice``: a WAV (16-bit mono) at the voice's own sample rate."""
    try:
        tts = voice_tts(
            voice.tts_config, voice.sample_rate, settings.speech, egress_guard(settings)
        )
    except ProviderError as exc:
        raise VoiceUnavailable(f"{voice.id} cannot speak here: {exc}") from None
    speech = tts if synthesis is None else synthesis.speech_for(tts, organization)
    try:
        pcm = b"".join([chunk async for chunk in speech.synthesize(text)])
    except ProviderError as exc:
        raise VoiceUnavailable(f"{voice.id} failed to speak: {exc}") from None
    finally:
        await tts.aclose()
    return pcm16_wav(pcm, tts.sample_rate)
