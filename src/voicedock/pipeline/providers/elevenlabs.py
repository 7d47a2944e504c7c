"""ElevenLabs streaming synthesis: `POST /v1/text-to-speech/{voice_id}/stream` with an
`xi-api-key` header and `output_format=pcm_<rate>`, answered by raw 16-bit little-endian
mono samples streamed while the voice is generated; `GET /v1/voices`: an account's voices."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from voicedock.domain.assistant_config import TtsConfig, VoiceSettings
from voicedock.egress import Egress
from voicedock.pipeline.providers._http import (
    OwnedSession,
    Timeouts,
    endpoint,
    post_for_pcm,
    raise_for_status,
    read_capped,
    require_key,
    translate_errors,
)
from voicedock.pipeline.providers.base import ProviderConfigError, ProviderResponseError
from voicedock.pipeline.providers.pronunciation import PhonemeStyle, Pronouncer

ELEVENLABS_BASE_URL = "https://api.elevenlabs.io"
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
# The models that read SSML <phoneme> tags (English); the others say a rule's alias.
PHONEME_MODELS = frozenset({"eleven_flash_v2", "eleven_turbo_v2", "eleven_monolingual_v1"})


class SpeechRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of a streaming synthesis (``language_code`` and ``voice_settings`` only when
    set)."""

    text: str
    model_id: str
    language_code: str = ""
    voice_settings: VoiceSettings | None = None


class ElevenLabsTts:
    """`Tts` over the ElevenLabs streaming endpoint, as its ``tts_config`` sets it."""

    def __init__(self, config: TtsConfig, *, egress: Egress | None = None) -> None:
        voice_id = config.voice_id or config.voice or ""
        sample_rate = config.sample_rate or 16000
        if not voice_id:
            raise ProviderConfigError("elevenlabs: voice_id is required")
        if sample_rate not in PCM_RATES:
            raise ProviderConfigError(
                f"elevenlabs: sample_rate must be one of {', '.join(map(str, PCM_RATES))}"
            )
        self._headers = {
            "xi-api-key": require_key("elevenlabs", config.api_key or ""),
            "Accept": "audio/pcm",
        }
        base_url = config.base_url or ELEVENLABS_BASE_URL
        self._url = str(
            endpoint("elevenlabs", base_url, "v1", "text-to-speech", voice_id, "stream")
        )
        self._params = {"output_format": f"pcm_{sample_rate}"}
        self._rate = sample_rate
        self._config = config
        self._model_id = config.model_id or config.model or "eleven_flash_v2_5"
        style: PhonemeStyle = "ssml" if self._model_id in PHONEME_MODELS else "alias"
        self._pronouncer = Pronouncer(config.pronunciations, style)
        self._session = OwnedSession(Timeouts.from_config(config), egress)

    @property
    def sample_rate(self) -> int:
        return self._rate

    def request_body(self, text: str) -> SpeechRequest:
        config = self._config
        return SpeechRequest(
            text=self._pronouncer.spoken(text),
            model_id=self._model_id,
            language_code=config.language_code or "",
            voice_settings=_voice_settings(config),
        )

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        body = self.request_body(text)
        async for pcm in post_for_pcm(
            "elevenlabs", self._session, self._url, body, self._headers, self._params
        ):
            yield pcm

    async def aclose(self) -> None:
        await self._session.aclose()


_VOICES_BYTES = 2_000_000  # an account's voice list


def _voice_settings(config: TtsConfig) -> VoiceSettings | None:
    """The section's ``voice_settings`` (none when absent or empty)."""
    settings = config.voice_settings
    return settings if settings and msgspec.structs.asdict(settings) != _NO_SETTINGS else None


_NO_SETTINGS = msgspec.structs.asdict(VoiceSettings())


class _Labels(msgspec.Struct):
    language: str | None = None


class _Voice(msgspec.Struct):
    voice_id: str
    name: str | None = None
    labels: _Labels | None = None


class _Voices(msgspec.Struct):
    voices: list[_Voice]


async def account_voices(
    api_key: str,
    *,
    base_url: str = ELEVENLABS_BASE_URL,
    timeouts: Timeouts | None = None,
    egress: Egress | None = None,
) -> list[tuple[str, str, str]]:
    """The account's voices as (voice_id, name, language; "" when it names none)."""
    session = OwnedSession(timeouts or Timeouts(), egress)
    headers = {"xi-api-key": require_key("elevenlabs", api_key)}
    try:
        with translate_errors("elevenlabs"):
            url = endpoint("elevenlabs", base_url, "v1", "voices")
            async with session.get().get(url, headers=headers) as response:
                await raise_for_status("elevenlabs", response)
                body = await read_capped("elevenlabs", response, _VOICES_BYTES)
    finally:
        await session.aclose()
    try:
        listed = msgspec.json.decode(body, type=_Voices).voices
    except msgspec.DecodeError as exc:
        raise ProviderResponseError("elevenlabs: the voice list is unreadable") from exc
    return [
        (v.voice_id, v.name or v.voice_id, (v.labels and v.labels.language) or "") for v in listed
    ]
