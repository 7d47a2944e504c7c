"""Shared plumbing of the cloud provider clients: one owned aiohttp session (through the
egress guard: every connection's addresses checked, answers read up to the caps), error
translation at the I/O boundary, each request's URL built from the checked base URL
(``endpoint``), a pure Server-Sent-Events decoder and PCM helpers (a body's chunks re-cut into
whole samples by ``pipeline/audio.py``'s ``Pcm16Aligner``).

Error mapping (HTTP status or transport failure → provider error tree):

    401, 403          ProviderConfigError      wrong or missing key: retrying cannot help
    404               ProviderConfigError      unknown model, voice or base URL
    408, timeouts     ProviderTimeoutError     retryable
    429               RateLimitedError         retryable, carries Retry-After seconds
    5xx               ProviderServerError      retryable (a ProviderResponseError)
    other 4xx         ProviderResponseError    not retryable (the request itself is wrong)
    connection reset  ProviderConnectionError  retryable
    URL refused       ProviderConfigError      the egress guard refused the address
    answer too large  ProviderResponseError    over the response cap: that turn fails

Error messages carry the provider name, status and the provider's own error text, never
the request headers (where the keys live).
"""

from __future__ import annotations

import asyncio
import email.utils
import io
import json
import time
import wave
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote

import aiohttp
import msgspec
from yarl import URL

from voicedock.domain.assistant_config import ProviderSection
from voicedock.domain.provider_urls import extras_problem
from voicedock.egress import DEFAULT_CAPS, Egress, ResponseCaps
from voicedock.egress.caps import read_at_most
from voicedock.egress.lazy_session import LazySession
from voicedock.errors import UnsafeUrl
from voicedock.pipeline.audio import Pcm16Aligner
from voicedock.pipeline.providers.base import (
    ProviderConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimitError,
    ProviderResponseError,
    ProviderServerError,
    ProviderTimeoutError,
)
from voicedock.weak import weak_method

_ERROR_TEXT_LIMIT = 300


class RateLimitedError(ProviderRateLimitError):
    """A 429: `retry_after_s` is the provider's requested back-off, when it sent one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(slots=True, frozen=True)
class Timeouts:
    """Per-request limits. `read_s` bounds the silence between two received chunks, so a
    long stream that keeps flowing is fine while a stalled one fails fast."""

    connect_s: float = 5.0
    read_s: float = 15.0
    total_s: float | None = None

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total_s, sock_connect=self.connect_s, sock_read=self.read_s
        )

    @classmethod
    def from_config(cls, config: ProviderSection) -> Timeouts:
        return cls(config.connect_timeout_s, config.read_timeout_s, config.total_timeout_s)


class OwnedSession:
    """A lazily created aiohttp session owned by one provider client (idempotent aclose).

    Created on first use so that building a provider from configuration needs no event loop.
    With an ``egress`` guard (what a call's providers get) every connection passes it; without
    one (a provider built directly, as in tests) connections are not checked. The response
    caps apply either way.
    """

    def __init__(self, timeouts: Timeouts, egress: Egress | None = None) -> None:
        self._timeouts = timeouts
        self._egress = egress
        self._session = LazySession(
            weak_method(self._open),
            lambda: ProviderConnectionError("the provider client is closed", retryable=False),
        )

    @property
    def caps(self) -> ResponseCaps:
        return DEFAULT_CAPS if self._egress is None else self._egress.caps

    def _open(self) -> aiohttp.ClientSession:
        timeout = self._timeouts.client_timeout()
        if self._egress is None:
            return aiohttp.ClientSession(timeout=timeout)
        return self._egress.session(timeout=timeout)

    def get(self) -> aiohttp.ClientSession:
        return self._session.get()

    async def aclose(self) -> None:
        await self._session.aclose()


_SCHEMES = ("http://", "https://", "ws://", "wss://")


def endpoint(provider: str, base_url: str, *segments: str) -> URL:
    """The URL of one of ``provider``'s endpoints: the base URL's scheme, host, port and path,
    then ``segments``, each one path segment, escaped (a voice id never adds or climbs a
    segment). A base URL with credentials, a query or a fragment is refused
    (``ProviderConfigError``): whatever follows its path would steer the request elsewhere
    on the server (``http://127.0.0.1:11434/api/pull#`` + ``/chat/completions``), whoever
    configured it."""
    if not base_url.startswith(_SCHEMES):
        problem: str | None = "only http(s) and ws(s) URLs are allowed"
    elif any(segment in ("", ".", "..") for segment in segments):
        problem = "an empty or dot path segment"
    else:
        problem = extras_problem(base_url)
    if problem is None:
        try:
            base = URL(base_url)
        except ValueError:
            problem = "not a valid URL"
        else:
            path = base.raw_path.rstrip("/") + "".join("/" + quote(s, safe="") for s in segments)
            return base.with_path(path or "/", encoded=True)
    raise ProviderConfigError(f"{provider}: URL refused: {problem}")


def require_key(provider: str, key: str) -> str:
    if not key:
        raise ProviderConfigError(f"{provider}: an API key is required")
    return key


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date; None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def provider_error_text(body: bytes) -> str:
    """The provider's human-readable error message from a JSON or text error body."""
    text = body[:4096].decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        return text[:_ERROR_TEXT_LIMIT]
    message: object = doc
    if isinstance(doc, dict):
        err = doc.get("error", doc.get("detail", doc.get("err_msg", doc)))
        message = err.get("message", err.get("msg", err)) if isinstance(err, dict) else err
    return str(message)[:_ERROR_TEXT_LIMIT]


def error_for_status(
    provider: str, status: int, body: bytes, headers: Mapping[str, str]
) -> ProviderError:
    detail = provider_error_text(body)
    message = f"{provider}: HTTP {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return ProviderConfigError(message + " (check the API key)")
    if status == 404:
        return ProviderConfigError(message)
    if status == 408:
        return ProviderTimeoutError(message)
    if status == 429:
        return RateLimitedError(
            message, retry_after_s=parse_retry_after(headers.get("Retry-After"))
        )
    if status >= 500:
        return ProviderServerError(message)
    return ProviderResponseError(message)


async def raise_for_status(provider: str, response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    try:
        body = await response.content.read(DEFAULT_CAPS.error_body_bytes)
    except (aiohttp.ClientError, TimeoutError):
        body = b""
    raise error_for_status(provider, response.status, body, response.headers)


@contextmanager
def translate_errors(provider: str) -> Iterator[None]:
    """Turn transport failures inside the block into the provider error tree."""
    try:
        yield
    except ProviderError:
        raise
    except UnsafeUrl as exc:  # the egress guard, when connecting
        raise ProviderConfigError(f"{provider}: URL refused: {exc.reason}") from None
    except TimeoutError as exc:
        raise ProviderTimeoutError(f"{provider}: no answer in time") from exc
    except aiohttp.WSServerHandshakeError as exc:
        headers: Mapping[str, str] = exc.headers or {}
        raise error_for_status(provider, exc.status, exc.message.encode(), headers) from exc
    except aiohttp.ClientPayloadError as exc:
        raise ProviderConnectionError(f"{provider}: the response broke off mid-stream") from exc
    except aiohttp.ClientError as exc:
        raise ProviderConnectionError(f"{provider}: {type(exc).__name__}") from exc
    except (ConnectionError, OSError) as exc:
        raise ProviderConnectionError(f"{provider}: {type(exc).__name__}") from exc


@dataclass(slots=True, frozen=True)
class SseEvent:
    data: str
    event: str = "message"


class SseDecoder:
    """Incremental text/event-stream decoder: bytes in (split anywhere), events out.

    Follows the WHATWG rules that matter here: LF, CRLF or CR line ends, `:` comment lines
    (keep-alives) ignored, several `data:` lines of one event joined with LF.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False
        self._data: list[str] = []
        self._event = ""

    def feed(self, chunk: bytes) -> list[SseEvent]:
        # Line ends are found by bytes.find (a streamed reply is an event per token: the
        # chunks' bytes are not walked one by one in Python), and the buffer is cut once.
        buffer = self._buffer + chunk
        start = 0
        if self._skip_lf and buffer:
            start = 1 if buffer[:1] == b"\n" else 0
            self._skip_lf = False
        events: list[SseEvent] = []
        lf, cr = buffer.find(b"\n", start), buffer.find(b"\r", start)
        while lf >= 0 or cr >= 0:
            end = lf if cr < 0 or 0 <= lf < cr else cr
            line = buffer[start:end].decode("utf-8", "replace")
            start = end + 1
            if end == cr:
                # A CR ends the line at once; an LF right after it (maybe in the next chunk)
                # is the second half of a CRLF and is skipped.
                if start == len(buffer):
                    self._skip_lf = True
                elif buffer[start] == 0x0A:
                    start += 1
            if 0 <= lf < start:
                lf = buffer.find(b"\n", start)
            if 0 <= cr < start:
                cr = buffer.find(b"\r", start)
            event = self._take_line(line)
            if event is not None:
                events.append(event)
        self._buffer = buffer[start:]
        return events

    def _take_line(self, line: str) -> SseEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(data="\n".join(self._data), event=self._event or "message")
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


def too_large(provider: str, what: str, cap: int) -> ProviderResponseError:
    """The error of an answer over its cap (the call goes on; its content is not logged)."""
    return ProviderResponseError(f"{provider}: the {what} is over the cap of {cap} bytes")


async def read_capped(
    provider: str, response: aiohttp.ClientResponse, cap: int, what: str = "answer"
) -> bytes:
    """The whole response body, refused (``ProviderResponseError``) past ``cap`` bytes."""
    with translate_errors(provider):
        body = await read_at_most(response.content, cap)
    if len(body) > cap:
        abort_response(response)
        raise too_large(provider, what, cap)
    return body


async def open_websocket(
    provider: str, session: OwnedSession, url: str, headers: Mapping[str, str]
) -> aiohttp.ClientWebSocketResponse:
    """A provider's websocket, its messages capped at the egress caps' size."""
    with translate_errors(provider):
        return await session.get().ws_connect(
            url, headers=headers, max_msg_size=session.caps.websocket_message_bytes
        )


def live_socket(
    provider: str, ws: aiohttp.ClientWebSocketResponse | None, *, closed: bool, what: str
) -> aiohttp.ClientWebSocketResponse:
    """The socket to send on: refused once voicedock closed the ``what`` (not retryable), or
    when the provider closed the socket (retryable)."""
    if closed or ws is None:
        raise ProviderConnectionError(f"{provider}: the {what} is closed", retryable=False)
    if ws.closed:
        raise ProviderConnectionError(f"{provider}: the socket closed")
    return ws


class _End:
    """The end of a socket's items."""


_END = _End()
_Item = TypeVar("_Item")


class SocketItems(Generic[_Item]):
    """What a provider socket's reader task hands to whoever iterates the stream: items in
    arrival order, then the end (``end()``, every later iteration ends at once too); a
    ``ProviderError`` put in is raised to the one iterating."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[_Item | ProviderError | _End] = asyncio.Queue()

    async def put(self, item: _Item | ProviderError) -> None:
        await self._queue.put(item)

    async def end(self) -> None:
        await self._queue.put(_END)

    async def __aiter__(self) -> AsyncIterator[_Item]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                await self._queue.put(_END)
                return
            if isinstance(item, ProviderError):
                try:
                    raise item
                finally:
                    del item  # its traceback holds this frame: the frame must not hold it
            yield item


def too_big(message: aiohttp.WSMessage) -> bool:
    """Whether a websocket receive failed because the message passed ``max_msg_size``."""
    error = message.data if message.type == aiohttp.WSMsgType.ERROR else None
    code = getattr(error, "code", None)
    return code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def iter_pcm_body(
    provider: str,
    response: aiohttp.ClientResponse,
    chunk_bytes: int = 32768,
    *,
    cap: int = DEFAULT_CAPS.tts_audio_bytes,
) -> AsyncIterator[bytes]:
    """Yield an audio response body as sample-aligned PCM chunks, at most ``cap`` bytes.

    A chunk is what has arrived, up to ``chunk_bytes``: the first is never held back for more,
    and a voice that sends faster than real time (they do) comes in a few pieces, not one per
    4 KiB, since each piece costs the dialogue its own conversion, queueing and bookkeeping
    (32 KiB: about 0.7 s of 24 kHz audio)."""
    aligner = Pcm16Aligner()
    total = 0
    with translate_errors(provider):
        async for chunk in response.content.iter_chunked(chunk_bytes):
            total += len(chunk)
            if total > cap:
                raise too_large(provider, "audio", cap)
            pcm = aligner.push(chunk)
            if pcm:
                yield pcm


async def post_for_pcm(
    provider: str,
    session: OwnedSession,
    url: str,
    body: msgspec.Struct,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
) -> AsyncIterator[bytes]:
    """POST ``body`` as JSON and stream the audio answer as sample-aligned PCM (a synthesis
    endpoint); leaving early (a barge-in) drops the connection, so generation stops too."""
    with translate_errors(provider):
        async with session.get().post(
            url,
            params=params,
            data=msgspec.json.encode(body),
            headers={**headers, "Content-Type": "application/json"},
        ) as response:
            try:
                await raise_for_status(provider, response)
                cap = session.caps.tts_audio_bytes
                async for pcm in iter_pcm_body(provider, response, cap=cap):
                    yield pcm
            finally:
                abort_response(response)


def pcm16_wav(pcm: bytes, sample_rate: int) -> bytes:
    """Wrap 16-bit mono PCM in a WAV container (what upload endpoints expect)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


def abort_response(response: aiohttp.ClientResponse) -> None:
    """Drop the connection of an unfinished response (cancellation must stop the upload
    or generation on the provider's side, not return a half-read socket to the pool)."""
    if not response.content.is_eof():
        response.close()


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Stop an owned task and wait for it; its own failure was already reported through
    the stream's queue, so it is retrieved here rather than raised again."""
    if task is None:
        return
    if not task.done():
        task.cancel()
        await asyncio.wait([task])
    if not task.cancelled():
        task.exception()
