"""The voices an organization's assistants may speak with, and a voice's preview.

The node's list (``pipeline/speaking/node_voices.py``): the installed Piper and espeak-ng voices,
read in a worker thread; the cloud voices the operator configured, ElevenLabs' asked of the
operator's account through the egress guard. ``Voices`` answers each organization the part of it the
organization may use, and speaks its previews.

What an organization sees follows ``[byok] mode`` as its calls do (``docs/voices.md``): under
``allowed`` and ``off`` its calls may speak with the operator's keys, so it sees every voice.
Under ``required`` they may not: the voices of the operator's ElevenLabs account are the
operator's and are never shown, and a cloud voice every account has (OpenAI's) is shown to an
organization holding a provider key for it. A voice not shown is not found: its preview is a
``404`` like an unknown voice's.

A preview speaks a short text through the node's own synthesis path, as the organization's
call would: a local voice's sentences through the node's synthesis pool with spare capacity
only (``pipeline/speaking/synthesis.py``: never before a call's speech, never in the calls' cache),
a cloud voice through its client with the key the organization's call would use (its provider key
named by ``api_key_ref``, checked as an assistant's ``tts_config`` is, else the operator's where
``[byok]`` allows it). Previews under way are bounded per organization and per node
(``[limits] previews_per_organization``, ``previews_per_node``): beyond, ``429`` with
``Retry-After``; one not spoken within ``PREVIEW_TIMEOUT_S`` (the node busy with calls) is a
``503``. The audio comes back as a WAV at the voice's own sample rate.

A voice id from a request is only ever looked up in the list: it never names a file, a
command line or a URL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Iterator

from voicedock.calls.assistants.key_refs import KeyRefs, fits
from voicedock.calls.live.providers import voice_tts
from voicedock.config import Settings
from voicedock.domain.json import JsonObject, json_object
from voicedock.domain.tenant_provider_fields import API_KEY_REF
from voicedock.egress import Egress
from voicedock.egress.settings import egress_guard
from voicedock.errors import ApiError, NotFound, ProviderError, RateLimited
from voicedock.pipeline.pools.worker_pool import PoolFull
from voicedock.pipeline.providers._http import pcm16_wav
from voicedock.pipeline.providers.base import Tts
from voicedock.pipeline.speaking.node_voices import Voice as Voice  # the records this floor answers
from voicedock.pipeline.speaking.node_voices import elevenlabs_voices, node_voices
from voicedock.pipeline.speaking.synthesis import NodeSynthesis
from voicedock.store.base import Store

PREVIEW_TEXT_MAX = 300  # characters of a preview's text
PREVIEW_RETRY_AFTER_S = 5
# The longest a preview waits and speaks: on a node whose calls leave no spare synthesis, it
# gives up (503) rather than hold its place.
PREVIEW_TIMEOUT_S = 30.0
TTS_CONFIG = "tts_config"


class VoiceUnavailable(ApiError, status=503, error="Voice unavailable"):
    """The voice's engine failed to speak the preview (a cloud provider's error, a missing
    engine): the request itself was fine."""

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(PREVIEW_RETRY_AFTER_S)}


async def local_voices(settings: Settings) -> list[Voice]:
    """The voices the node knows without asking a provider (blocking reads in a thread)."""
    return await asyncio.to_thread(node_voices, settings.speech)


class Voices:
    """The voices each organization may use on this node, and their previews."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        synthesis: NodeSynthesis | None,
        egress: Egress | None = None,
    ) -> None:
        """``synthesis``: the node's (the call runner's; None: a local voice's preview runs
        in its own worker thread); ``egress``: the guard providers connect through."""
        self._settings = settings
        self._store = store
        self._synthesis = synthesis
        self._egress = egress or egress_guard(settings)
        self.under_way = 0  # previews being spoken now, on this node
        self._by_organization: Counter[str] = Counter()

    async def listed(self, organization_id: str) -> list[Voice]:
        """The node's voices the organization may speak with."""
        voices = await local_voices(self._settings)
        speech = self._settings.speech
        if self._settings.byok.mode != "required":
            if speech.elevenlabs_api_key:
                providers = self._egress.for_providers()
                voices += await elevenlabs_voices(speech.elevenlabs_api_key, providers)
            return voices
        # Only the organization's own keys speak: the operator's account is not its to use.
        keys = {key.provider for key in await self._store.list_provider_keys(organization_id)}
        return [v for v in voices if not v.cloud or any(fits(k, v.provider) for k in keys)]

    async def find(self, organization_id: str, voice_id: str) -> Voice:
        for voice in await self.listed(organization_id):
            if voice.id == voice_id:
                return voice
        raise NotFound("no voice with this id on this node", error="Voice not found")

    async def preview(
        self, organization_id: str, voice_id: str, text: str, api_key_ref: str | None = None
    ) -> bytes:
        """``text`` spoken in the voice: a WAV (16-bit mono) at the voice's own sample rate.
        ``api_key_ref``: the organization's provider key to speak a cloud voice with."""
        voice = await self.find(organization_id, voice_id)
        section: JsonObject = dict(voice.tts_config)
        if api_key_ref is not None:
            section[API_KEY_REF] = api_key_ref
        config: JsonObject = {TTS_CONFIG: section}
        byok = self._settings.byok
        # As an assistant's tts_config is checked when saved: 403 off, 422 no such key, 400
        # (required) none named for a cloud voice. Only the voice: a preview reaches no
        # other engine.
        speech = self._settings.speech
        key_refs = KeyRefs(self._store, organization_id, byok, speech)
        await key_refs.check(config, partial=True)
        with self._admitted(organization_id):
            try:
                opened = await key_refs.opened(config, partial=True)
                tts = voice_tts(
                    json_object(opened[TTS_CONFIG]) or {},
                    voice.sample_rate,
                    speech,
                    self._egress,
                    speech_keys=byok.mode != "required",
                )
            except ProviderError as exc:
                raise VoiceUnavailable(f"{voice.id} cannot speak here: {exc}") from None
            try:
                async with asyncio.timeout(PREVIEW_TIMEOUT_S):
                    pcm = await self._spoken(tts, organization_id, text)
            except ProviderError as exc:
                raise VoiceUnavailable(f"{voice.id} failed to speak: {exc}") from None
            except TimeoutError:
                raise VoiceUnavailable(
                    f"{voice.id} not spoken within {PREVIEW_TIMEOUT_S:g} s: the node's speech "
                    "is busy with calls"
                ) from None
            finally:
                await tts.aclose()
        return pcm16_wav(pcm, tts.sample_rate)

    async def _spoken(self, tts: Tts, organization_id: str, text: str) -> bytes:
        if self._synthesis is not None:  # a local voice: spare capacity of the node's pool
            tts = self._synthesis.speech_for(tts, organization_id, preview=True)
        try:
            return b"".join([chunk async for chunk in tts.synthesize(text)])
        except PoolFull:  # previews' sentences wait already, as many as the pool holds
            raise self._busy("this node has too many voice previews under way") from None

    @contextlib.contextmanager
    def _admitted(self, organization_id: str) -> Iterator[None]:
        """One preview under way for the block, or ``RateLimited`` past a bound."""
        limits = self._settings.limits
        per_organization = limits.previews_per_organization
        if self.under_way >= limits.previews_per_node:
            raise self._busy("this node has too many voice previews under way")
        if per_organization and self._by_organization[organization_id] >= per_organization:
            raise self._busy(
                f"this organization has {per_organization} voice previews under way, its most"
            )
        self.under_way += 1
        self._by_organization[organization_id] += 1
        try:
            yield
        finally:
            self.under_way -= 1
            self._by_organization.subtract((organization_id,))
            if self._by_organization[organization_id] <= 0:
                del self._by_organization[organization_id]

    @staticmethod
    def _busy(refused: str) -> RateLimited:
        return RateLimited(
            f"{refused}; retry later",
            error="Too many previews",
            retry_after_seconds=PREVIEW_RETRY_AFTER_S,
        )
