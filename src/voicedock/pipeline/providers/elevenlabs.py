"""ElevenLabs streaming synthesis: `POST /v1/text-to-speech/{voice_id}/stream` with an
`xi-api-key` header and `output_format=pcm_<rate>`, answered by raw 16-bit little-endian
mono samples streamed while the voice is generated; `GET /v1/voices`: an account's voices."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from voicedock.egress import Egress
from voicedock.pipeline.providers._http import (
    OwnedSession,
    Timeouts,
    abort_response,
    endpoint,
    iter_pcm_body,
    raise_for_status,
    read_capped,
    require_key,
    translate_errors,
)
from voicedock.pipeline.providers.base import ProviderConfigError, ProviderResponseError

ELEVENLABS_BASE_URL = "https://api.elevenlabs.io"
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)


class ElevenLabsTts:
    """`Tts` over the ElevenLabs streaming endpoint."""

    def __init__(
        self,
        *,
        api_key: str,
        voice_id: str,
        model_id: str = "eleven_flash_v2_5",
        sample_rate: int = 16000,
        language_code: str = "",
        voice_settings: Mapping[str, Any] | None = None,
        base_url: str = ELEVENLABS_BASE_URL,
        timeouts: Timeouts | None = None,
        egress: Egress | None = None,
    ) -> None:
        if not voice_id:
            raise ProviderConfigError("elevenlabs: voice_id is required")
        if sample_rate not in PCM_RATES:
            raise ProviderConfigError(
                f"elevenlabs: sample_rate must be one of {', '.join(map(str, PCM_RATES))}"
            )
        self._headers = {
            "xi-api-key": require_key("elevenlabs", api_key),
            "Accept": "audio/pcm",
        }
        self._url = str(
            endpoint("elevenlabs", base_url, "v1", "text-to-speech", voice_id, "stream")
        )
        self._params = {"output_format": f"pcm_{sample_rate}"}
        self._rate = sample_rate
        self._model_id = model_id
        self._language_code = language_code
        self._voice_settings = dict(voice_settings or {})
        self._session = OwnedSession(timeouts or Timeouts(), egress)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, default_key: str = "", egress: Egress | None = None
    ) -> ElevenLabsTts:
        return cls(
            api_key=str(config.get("api_key") or default_key),
            voice_id=str(config.get("voice_id") or config.get("voice") or ""),
            model_id=str(config.get("model_id") or config.get("model") or "eleven_flash_v2_5"),
            sample_rate=int(config.get("sample_rate", 16000)),
            language_code=str(config.get("language_code", "")),
            voice_settings=config.get("voice_settings"),
            base_url=str(config.get("base_url") or ELEVENLABS_BASE_URL),
            timeouts=Timeouts.from_config(config),
            egress=egress,
        )

    @property
    def sample_rate(self) -> int:
        return self._rate

    def request_body(self, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text, "model_id": self._model_id}
        if self._language_code:
            body["language_code"] = self._language_code
        if self._voice_settings:
            body["voice_settings"] = self._voice_settings
        return body

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        with translate_errors("elevenlabs"):
            session = self._session.get()
            async with session.post(
                self._url, params=self._params, json=self.request_body(text), headers=self._headers
            ) as response:
                try:
                    await raise_for_status("elevenlabs", response)
                    cap = self._session.caps.tts_audio_bytes
                    async for pcm in iter_pcm_body("elevenlabs", response, cap=cap):
                        yield pcm
                finally:
                    abort_response(response)

    async def aclose(self) -> None:
        await self._session.aclose()


_VOICES_BYTES = 2_000_000  # an account's voice list


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
        listed = json.loads(body)["voices"]
        return [_voice(item) for item in listed if isinstance(item, dict)]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProviderResponseError("elevenlabs: the voice list is unreadable") from exc


def _voice(item: Mapping[str, Any]) -> tuple[str, str, str]:
    voice_id = str(item["voice_id"])
    labels = item.get("labels")
    language = labels.get("language") if isinstance(labels, Mapping) else None
    return voice_id, str(item.get("name") or voice_id), str(language or "")
