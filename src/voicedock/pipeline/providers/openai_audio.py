"""OpenAI speech endpoints: `POST /audio/transcriptions` (multipart upload of one
utterance) and `POST /audio/speech` with `response_format=pcm`, which streams raw 24 kHz
16-bit little-endian mono samples as they are synthesized."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
import msgspec

from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.domain.vocabulary import keyterms_prompt
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
from voicedock.pipeline.providers.pronunciation import Pronouncer

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


class _AudioEndpoint:
    """A client of one of OpenAI's ``/audio`` endpoints: its key, its URL under the
    configuration's ``base_url``, its session (within the configuration's timeouts)."""

    def __init__(
        self, name: str, path: str, config: SttConfig | TtsConfig, egress: Egress | None
    ) -> None:
        self._headers = {"Authorization": f"Bearer {require_key(name, config.api_key or '')}"}
        base_url = config.base_url or OPENAI_BASE_URL
        self._url = str(endpoint("openai", base_url, "audio", path))
        self._session = OwnedSession(Timeouts.from_config(config), egress)

    async def aclose(self) -> None:
        await self._session.aclose()


class OpenAiStt(_AudioEndpoint):
    """`Stt` over `POST {base_url}/audio/transcriptions` (whisper-1, gpt-4o-*-transcribe), as
    its ``stt_config`` sets it."""

    def __init__(self, config: SttConfig, *, egress: Egress | None = None) -> None:
        super().__init__("openai-stt", "transcriptions", config, egress)
        self._config = config

    def _form(self, pcm: bytes, sample_rate: int) -> aiohttp.FormData:
        form = aiohttp.FormData()
        form.add_field(
            "file", pcm16_wav(pcm, sample_rate), filename="audio.wav", content_type="audio/wav"
        )
        config = self._config
        form.add_field("model", config.model or "gpt-4o-mini-transcribe")
        form.add_field("response_format", "json")
        if config.language:
            form.add_field("language", config.language)
        prompt = " ".join(p for p in (config.prompt, keyterms_prompt(config.keyterms)) if p)
        if prompt:  # the keyterms after the assistant's own prompt
            form.add_field("prompt", prompt)
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


class OpenAiTts(_AudioEndpoint):
    """`Tts` over `POST {base_url}/audio/speech`, streamed as 24 kHz PCM, as its
    ``tts_config`` sets it."""

    def __init__(self, config: TtsConfig, *, egress: Egress | None = None) -> None:
        super().__init__("openai-tts", "speech", config, egress)
        self._config = config
        self._pronouncer = Pronouncer(config.pronunciations, "alias")

    @property
    def sample_rate(self) -> int:
        return OPENAI_PCM_RATE

    def request_body(self, text: str) -> SpeechRequest:
        config = self._config
        return SpeechRequest(
            model=config.model or "gpt-4o-mini-tts",
            input=self._pronouncer.spoken(text),
            voice=config.voice or "alloy",
            response_format="pcm",
            instructions=config.instructions or "",
            speed=config.speed,
        )

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        if not text.strip():
            return
        body = self.request_body(text)
        async for pcm in post_for_pcm("openai-tts", self._session, self._url, body, self._headers):
            yield pcm
