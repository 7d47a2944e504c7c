"""Deepgram speech recognition (nova-3).

Live: a websocket to `wss://api.deepgram.com/v1/listen?model=nova-3&encoding=linear16&
sample_rate=..` authenticated with `Authorization: Token <key>`. Caller audio goes up as
binary frames; `Results` text messages come back (`is_final` marks a segment that will not
change, `speech_final` an endpoint). `{"type": "KeepAlive"}` keeps a silent socket open,
`{"type": "CloseStream"}` asks the server to flush its last results and close.

Utterances: `POST /v1/listen` with a WAV body, answered with the pre-recorded JSON result.

Both carry ``stt_config.keyterms`` in the query: Nova-3's `keyterm` (a term or phrase each),
the earlier models' `keywords` (single words).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping, Sequence

import aiohttp
import msgspec
from msgspec import UNSET

from voicedock.domain.assistant_config import SttConfig
from voicedock.egress import Egress
from voicedock.pipeline.frames import Transcript
from voicedock.pipeline.providers._http import (
    OwnedSession,
    Timeouts,
    cancel_and_wait,
    endpoint,
    pcm16_wav,
    raise_for_status,
    read_capped,
    require_key,
    translate_errors,
)
from voicedock.pipeline.providers.base import (
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderTimeoutError,
)
from voicedock.pipeline.providers.socket_session import SocketSession

DEEPGRAM_BASE_URL = "https://api.deepgram.com/v1"
_WORD = re.compile(r"\w+")
KEEPALIVE_MESSAGE = json.dumps({"type": "KeepAlive"})
CLOSE_STREAM_MESSAGE = json.dumps({"type": "CloseStream"})


class _Kind(msgspec.Struct):
    type: object = None  # compared with the two types read; any other is passed over


class _Error(msgspec.Struct):
    description: str | None = None
    message: str | None = None


class _Alternative(msgspec.Struct):
    transcript: str = ""


class _Channel(msgspec.Struct):
    alternatives: list[_Alternative] = []

    def text(self) -> str:
        """The first alternative's transcript ("" when there is none)."""
        return self.alternatives[0].transcript.strip() if self.alternatives else ""


class _Results(msgspec.Struct):
    """A live ``Results`` message: one segment's transcript so far, or final."""

    channel: _Channel | None = None
    is_final: bool = False


class _PrerecordedResults(msgspec.Struct):
    channels: list[_Channel]


class _Prerecorded(msgspec.Struct):
    """The answer to an uploaded utterance."""

    results: _PrerecordedResults


_decode_kind = msgspec.json.Decoder(_Kind).decode
_decode_results = msgspec.json.Decoder(_Results).decode


def parse_listen_message(text: str) -> Transcript | None:
    """One server message of the live socket: a Transcript for non-empty `Results`, None for
    the other message types (Metadata, SpeechStarted, UtteranceEnd), an error for `Error`."""
    try:
        kind = _decode_kind(text).type
        if kind == "Error":
            error = msgspec.json.decode(text, type=_Error)
            detail = error.description or error.message or "error"
            raise ProviderResponseError(f"deepgram: {detail}", retryable=True)
        if kind != "Results":
            return None
        results = _decode_results(text)
    except msgspec.ValidationError as exc:
        raise ProviderResponseError("deepgram: message is malformed") from exc
    except msgspec.DecodeError as exc:
        raise ProviderResponseError("deepgram: message is not JSON") from exc
    said = results.channel.text() if results.channel is not None else ""
    return Transcript(said, final=results.is_final) if said else None


def prerecorded_text(body: bytes) -> str:
    try:
        channels = msgspec.json.decode(body, type=_Prerecorded).results.channels
        return channels[0].text()
    except (msgspec.DecodeError, IndexError) as exc:
        raise ProviderResponseError("deepgram: unexpected transcription result") from exc


def keyterm_options(model: str, keyterms: Sequence[str]) -> list[tuple[str, str]]:
    """The query parameters that give ``model`` the keyterms: Nova-3's ``keyterm`` (one per
    term, phrases too), the earlier models' ``keywords`` (single words without punctuation:
    each word of a term once, at Deepgram's default boost)."""
    if model.startswith("nova-3"):
        return [("keyterm", term) for term in keyterms]
    words = dict.fromkeys(word for term in keyterms for word in _WORD.findall(term))
    return [("keywords", word) for word in words]


class DeepgramStt:
    """`StreamingStt`: `transcribe()` for one utterance, `stream()` for live recognition."""

    def __init__(
        self, config: SttConfig, *, keepalive_s: float = 5.0, egress: Egress | None = None
    ) -> None:
        self._headers = {"Authorization": f"Token {require_key('deepgram', config.api_key or '')}"}
        self._listen = endpoint("deepgram", config.base_url or DEEPGRAM_BASE_URL, "listen")
        # The API docs name models "nova-3-general"; the listen endpoint takes "nova-3".
        model = (config.model or "nova-3").removesuffix("-general")
        self._options: list[tuple[str, str]] = [("model", model)]
        if config.language:
            self._options.append(("language", config.language))
        if config.smart_format:
            self._options.append(("smart_format", "true"))
        self._options += keyterm_options(model, config.keyterms or ())
        endpointing = config.endpointing_ms
        self._endpointing_ms = 300 if endpointing is UNSET else endpointing
        self._interim = config.interim_results
        self._keepalive_s = keepalive_s
        self._timeouts = Timeouts.from_config(config)
        self._session = OwnedSession(self._timeouts, egress)

    def live_url(self, sample_rate: int) -> str:
        params = [
            *self._options,
            ("encoding", "linear16"),
            ("sample_rate", str(sample_rate)),
            ("channels", "1"),
            ("interim_results", "true" if self._interim else "false"),
        ]
        if self._endpointing_ms is not None:
            params.append(("endpointing", str(self._endpointing_ms)))
        scheme = {"https": "wss", "http": "ws"}.get(self._listen.scheme, self._listen.scheme)
        return str(self._listen.with_scheme(scheme).with_query(params))

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        headers = {**self._headers, "Content-Type": "audio/wav"}
        with translate_errors("deepgram"):
            session = self._session.get()
            async with session.post(
                self._listen,
                params=self._options,
                data=pcm16_wav(pcm, sample_rate),
                headers=headers,
            ) as response:
                await raise_for_status("deepgram", response)
                cap = self._session.caps.stt_result_bytes
                body = await read_capped("deepgram", response, cap, "transcription")
        return prerecorded_text(body)

    def stream(self, sample_rate: int) -> DeepgramStream:
        return DeepgramStream(
            self._session,
            self.live_url(sample_rate),
            self._headers,
            keepalive_s=self._keepalive_s,
            finish_timeout_s=self._timeouts.read_s,
        )

    async def aclose(self) -> None:
        await self._session.aclose()


class DeepgramStream(SocketSession[Transcript]):
    """One live recognition session (`SttStream`). Use as `async with stt.stream(rate) as s`.

    The stream owns its socket and the two tasks that use it (reader, keep-alive); aclose()
    stops both and closes the socket. Transcripts are iterated in arrival order; iteration
    ends after the server closes the socket (normally after `end_input()`), or raises the
    provider error that broke the session.
    """

    def __init__(
        self,
        session: OwnedSession,
        url: str,
        headers: Mapping[str, str],
        *,
        keepalive_s: float,
        finish_timeout_s: float,
    ) -> None:
        super().__init__("deepgram", "stream", session, url, headers)
        self._keepalive_s = keepalive_s
        self._finish_timeout_s = finish_timeout_s
        self._keepalive: asyncio.Task[None] | None = None
        self._last_sent = 0.0
        self._input_ended = asyncio.Event()

    async def _connected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._last_sent = time.monotonic()
        self._keepalive = self._tasks.spawn(self._keep_alive(ws), name="deepgram-keepalive")

    async def push_audio(self, pcm: bytes) -> None:
        if not pcm:
            return  # an empty binary frame would end the stream on Deepgram's side
        ws = self._socket()
        with translate_errors("deepgram"):
            await ws.send_bytes(pcm)
        self._last_sent = time.monotonic()

    async def end_input(self) -> None:
        if self._input_ended.is_set():
            return
        ws = self._socket()
        self._input_ended.set()
        with translate_errors("deepgram"):
            await ws.send_str(CLOSE_STREAM_MESSAGE)

    async def _keep_alive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while not ws.closed and not self._input_ended.is_set():
            await asyncio.sleep(self._keepalive_s / 2)
            if time.monotonic() - self._last_sent >= self._keepalive_s:
                try:
                    await ws.send_str(KEEPALIVE_MESSAGE)
                except (aiohttp.ClientError, ConnectionError):
                    return  # the reader reports the broken socket
                self._last_sent = time.monotonic()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            while True:
                timeout = self._finish_timeout_s if self._input_ended.is_set() else None
                try:
                    msg = await ws.receive(timeout=timeout)
                except TimeoutError:
                    await self._items.put(ProviderTimeoutError("deepgram: no final result"))
                    return
                if msg.type == aiohttp.WSMsgType.TEXT:
                    try:
                        transcript = parse_listen_message(msg.data)
                    except ProviderError as exc:
                        await self._items.put(exc)
                        return
                    if transcript is not None:
                        await self._items.put(transcript)
                    continue
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING):
                    code = ws.close_code if msg.type != aiohttp.WSMsgType.CLOSE else msg.data
                    if code not in (1000, None) and not self._closed:
                        reason = msg.extra if msg.type == aiohttp.WSMsgType.CLOSE else ""
                        await self._items.put(
                            ProviderConnectionError(f"deepgram: socket closed {code} {reason}")
                        )
                    return
                if await self._over_cap(msg):
                    return
                if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    if not self._input_ended.is_set() and not self._closed:
                        await self._items.put(ProviderConnectionError("deepgram: socket broke"))
                    return
        finally:
            await self._items.end()

    async def _closing(self) -> None:
        await cancel_and_wait(self._keepalive)  # nothing is sent once the socket closes
