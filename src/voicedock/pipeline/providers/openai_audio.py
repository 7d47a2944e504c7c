"""OpenAI speech endpoints: `POST /audio/transcriptions` (multipart upload of one
utterance) and `POST /audio/speech` with `response_format=pcm`, which streams raw 24 kHz
16-bit little-endian mono samples as they are synthesized."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
import msgspec

from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.egress import Egress
from voicedock.pipeline.providers._http import (
    OwnedSession,
    Timeouts,
    endpoint,
    pcm16_wav,
    post_for_pcm,
    raise_for_status,
    read_capped,
    require_key,
    translate_errors,
)
from voicedock.pipeline.providers.base import ProviderResponseError

OPENAI_BASE_URL = "https://api.openai.com/v1"
OPENAI_PCM_RATE = 24000  # fixed by the API for response_format=pcm


class _Transcription(msgspec.Struct):
    text: str


class SpeechRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The body of ``POST /audio/speech`` (``instructions`` and ``speed`` only when set)."""

    model: str
    input: str
    voice: str
    response_format: Literal["pcm"]
    instructions: str = ""
    speed: float | None = None


def transcription_text(body: bytes) -> str:
    try:
        return msgspec.json.decode(body, type=_Transcription).text.strip()
    except msgspec.ValidationError as exc:
        raise ProviderResponseError("openai-stt: transcription has no text") from exc
    except msgspec.DecodeError as exc:
        raise ProviderResponseError("openai-stt: transcription is not JSON") from exc


class OpenAiStt:
    """`Stt` over `POST {base_url}/audio/transcriptions` (whisper-1, gpt-4o-*-transcribe)."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gpt-4o-mini-transcribe",
        language: str = "",
        prompt: str = "",
        base_url: str = OPENAI_BASE_URL,
        timeouts: Timeouts | None = None,
        egress: Egress | None = None,
    ) -> None:
        self._headers = {"Authorization": f"Bearer {require_key('openai-stt', api_key)}"}
        self._url = str(endpoint("openai", base_url, "audio", "transcriptions"))
        self._model = model
        self._language = language
        self._prompt = prompt
        self._session = OwnedSession(timeouts or Timeouts(), egress)

    @classmethod
    def from_config(cls, config: SttConfig, *, egress: Egress | None = None) -> OpenAiStt:
        return cls(
            api_key=config.api_key or "",
            model=config.model or "gpt-4o-mini-transcribe",
            language=config.language or "",
            prompt=config.prompt or "",
            base_url=config.base_url or OPENAI_BASE_URL,
            timeouts=Timeouts.from_config(config),
            egress=egress,
        )

    def _form(self, pcm: bytes, sample_rate: int) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field(
            "file", pcm16_wav(pcm, sample_rate), filename="audio.wav", content_type="audio/wav"
        )
        form.add_field("model", self._model)
        form.add_field("response_format", "json")
        if self._language:
            form.add_field("language", self._language)
        if self._prompt:
            form.add_field("prompt", self._prompt)
        return form

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        with translate_errors("openai-stt"):
            session = self._session.get()
            form = self._form(pcm, sample_rate)
            async with session.post(self._url, data=form, headers=self._headers) as response:
                await raise_for_status("openai-stt", response)
                cap = self._session.caps.stt_result_bytes
                body = await read_capped("openai-stt", response, cap, "transcription")
        return transcription_text(body)

    async def aclose(self) -> None:
        await self._session.aclose()


class OpenAiTts:
    """`Tts` over `POST {base_url}/audio/speech`, streamed as 24 kHz PCM."""

    def __init__(
        self,
        *,
        api_key: str,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        instructions: str = "",
        speed: float | None = None,
        base_url: str = OPENAI_BASE_URL,
        timeouts: Timeouts | None = None,
        egress: Egress | None = None,
    ) -> None:
        self._headers = {"Authorization": f"Bearer {require_key('openai-tts', api_key)}"}
        self._url = str(endpoint("openai", base_url, "audio", "speech"))
        self._model = model
        self._voice = voice
        self._instructions = instructions
        self._speed = speed
        self._session = OwnedSession(timeouts or Timeouts(), egress)

    @classmethod
    def from_config(cls, config: TtsConfig, *, egress: Egress | None = None) -> OpenAiTts:
        return cls(
            api_key=config.api_key or "",
            model=config.model or "gpt-4o-mini-tts",
            voice=config.voice or "alloy",
            instructions=config.instructions or "",
            speed=config.speed,
            base_url=config.base_url or OPENAI_BASE_URL,
            timeouts=Timeouts.from_config(config),
            egress=egress,
        )

    @property
    def sample_rate(self) -> int:
        return OPENAI_PCM_RATE

    def request_body(self, text: str) -> SpeechRequest:
        return SpeechRequest(
            model=self._model,
            input=text,
            voice=self._voice,
            response_format="pcm",
            instructions=self._instructions,
            speed=self._speed,
        )

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        body = self.request_body(text)
        async for pcm in post_for_pcm("openai-tts", self._session, self._url, body, self._headers):
            yield pcm

    async def aclose(self) -> None:
        await self._session.aclose()
