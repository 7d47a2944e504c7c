"""Speech-to-speech over an OpenAI-Realtime-compatible websocket (xAI's realtime API for the
`xai_realtime` mode; OpenAI's own endpoint speaks the same events).

Client events sent: `session.update` (voice, instructions, PCM formats, server VAD),
`input_audio_buffer.append` (base64 caller audio), `conversation.item.create` +
`response.create` (text injection), `response.cancel` (barge-in).
Server events read: `response.output_audio.delta` / `response.audio.delta` (base64 PCM),
the matching transcript deltas, `conversation.item.input_audio_transcription.completed`,
`input_audio_buffer.speech_started`, `input_audio_buffer.speech_stopped` (the server VAD's
end of the caller's turn: where a turn's latency is measured from), `response.created`,
`response.done`, `error`.

`say` is made reliable by sending the text as a system item and then a `response.create`
whose instructions demand it verbatim, cancelling any response still in flight first.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from voicedock.aio import Supervisor
from voicedock.egress import Egress
from voicedock.pipeline.providers._http import (
    OwnedSession,
    Timeouts,
    endpoint,
    require_key,
    too_big,
    too_large,
    translate_errors,
)
from voicedock.pipeline.providers.base import ProviderConnectionError, ProviderResponseError
from voicedock.pipeline.tools import ToolSpec

log = logging.getLogger("voicedock.pipeline.providers")

XAI_REALTIME_URL = "wss://api.x.ai/v1/realtime"
SAY_INSTRUCTIONS = (
    "Say exactly the following text, verbatim, in the conversation's language as written, "
    "and nothing else: "
)


@dataclass(slots=True, frozen=True)
class RealtimeAudio:
    pcm: bytes


@dataclass(slots=True, frozen=True)
class RealtimeTranscript:
    role: Literal["user", "assistant"]
    text: str
    final: bool


@dataclass(slots=True, frozen=True)
class RealtimeSpeechStarted:
    """Server VAD heard the caller: stop playing the assistant's audio (barge-in)."""


@dataclass(slots=True, frozen=True)
class RealtimeSpeechStopped:
    """Server VAD decided the caller's turn is over (the model answers next).

    ``audio_end_ms`` is where, in the session's input audio, the server put the end of speech
    (None when the server does not say)."""

    audio_end_ms: int | None = None


@dataclass(slots=True, frozen=True)
class RealtimeResponseDone:
    status: str


@dataclass(slots=True, frozen=True)
class RealtimeError:
    """An `error` event: the session stays open (e.g. cancelling when nothing is active)."""

    code: str
    message: str


@dataclass(slots=True, frozen=True)
class RealtimeFunctionCall:
    """The model called a function (``response.function_call_arguments.done``): its result
    goes back with ``RealtimeConversation.function_result``."""

    call_id: str
    name: str
    arguments: str


RealtimeEvent = (
    RealtimeFunctionCall
    | RealtimeAudio
    | RealtimeTranscript
    | RealtimeSpeechStarted
    | RealtimeSpeechStopped
    | RealtimeResponseDone
    | RealtimeError
)

_AUDIO_DELTAS = {"response.output_audio.delta", "response.audio.delta"}
_TEXT_DELTAS = {
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
}


def session_update(
    *,
    instructions: str,
    voice: str,
    sample_rate: int,
    turn_detection: str = "server_vad",
    tools: Sequence[ToolSpec] = (),
) -> dict[str, Any]:
    pcm = {"type": "audio/pcm", "rate": sample_rate}
    session: dict[str, Any] = {
        "instructions": instructions,
        "voice": voice,
        "turn_detection": {"type": turn_detection},
        "audio": {"input": {"format": pcm}, "output": {"format": pcm}},
    }
    if tools:
        session["tools"] = [{"type": "function", **t.openai_tool()["function"]} for t in tools]
    return {"type": "session.update", "session": session}


def function_output(call_id: str, output: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def audio_append(pcm: bytes) -> dict[str, Any]:
    return {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode("ascii")}


def text_item(role: Literal["user", "system"], text: str) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": role,
            "content": [{"type": "input_text", "text": text}],
        },
    }


def response_create(instructions: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.create"}
    if instructions is not None:
        event["response"] = {"instructions": instructions}
    return event


def parse_server_event(text: str) -> tuple[str, RealtimeEvent | None]:
    """(event type, typed event or None for events the call does not need)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ProviderResponseError("realtime: event is not JSON") from exc
    if not isinstance(doc, dict):
        raise ProviderResponseError("realtime: event is not an object")
    kind = str(doc.get("type", ""))
    if kind in _AUDIO_DELTAS:
        try:
            return kind, RealtimeAudio(base64.b64decode(doc.get("delta", ""), validate=True))
        except ValueError as exc:
            raise ProviderResponseError("realtime: audio delta is not base64") from exc
    if kind in _TEXT_DELTAS:
        return kind, RealtimeTranscript("assistant", str(doc.get("delta", "")), final=False)
    if kind == "conversation.item.input_audio_transcription.completed":
        return kind, RealtimeTranscript("user", str(doc.get("transcript", "")), final=True)
    if kind == "input_audio_buffer.speech_started":
        return kind, RealtimeSpeechStarted()
    if kind == "input_audio_buffer.speech_stopped":
        end = doc.get("audio_end_ms")
        ok = isinstance(end, int) and not isinstance(end, bool)
        return kind, RealtimeSpeechStopped(end if ok else None)
    if kind == "response.function_call_arguments.done":
        return kind, RealtimeFunctionCall(
            str(doc.get("call_id", "")), str(doc.get("name", "")), str(doc.get("arguments", ""))
        )
    if kind == "response.done":
        status = (doc.get("response") or {}).get("status", "completed")
        return kind, RealtimeResponseDone(str(status))
    if kind == "error":
        err = doc.get("error") or {}
        return kind, RealtimeError(
            str(err.get("code") or err.get("type") or ""), str(err.get("message", ""))
        )
    return kind, None


class RealtimeSpeech:
    """Configuration and connection factory of the speech-to-speech provider."""

    def __init__(
        self,
        *,
        api_key: str,
        url: str = XAI_REALTIME_URL,
        model: str = "",
        voice: str = "Ara",
        instructions: str = "",
        sample_rate: int = 24000,
        timeouts: Timeouts | None = None,
        egress: Egress | None = None,
    ) -> None:
        self._headers = {"Authorization": f"Bearer {require_key('realtime', api_key)}"}
        checked = endpoint("realtime", url)
        self._url = str(checked.with_query(model=model) if model else checked)
        self._voice = voice
        self._instructions = instructions
        self.sample_rate = sample_rate
        self._session = OwnedSession(timeouts or Timeouts(), egress)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, default_key: str = "", egress: Egress | None = None
    ) -> RealtimeSpeech:
        return cls(
            api_key=str(config.get("api_key") or default_key),
            url=str(config.get("url") or XAI_REALTIME_URL),
            model=str(config.get("model", "")),
            voice=str(config.get("voice", "Ara")),
            instructions=str(config.get("instructions") or config.get("system_prompt") or ""),
            sample_rate=int(config.get("sample_rate", 24000)),
            timeouts=Timeouts.from_config(config),
            egress=egress,
        )

    def connect(
        self, instructions: str | None = None, tools: Sequence[ToolSpec] = ()
    ) -> RealtimeConversation:
        update = session_update(
            instructions=self._instructions if instructions is None else instructions,
            voice=self._voice,
            sample_rate=self.sample_rate,
            tools=tools,
        )
        return RealtimeConversation(self._session, self._url, self._headers, update)

    async def aclose(self) -> None:
        await self._session.aclose()


_END = object()


class RealtimeConversation:
    """One live speech-to-speech session; `async with speech.connect() as conv`.

    Owns its socket and reader task; aclose() stops both. Iterating yields RealtimeEvents
    until the server closes the session, or raises ProviderConnectionError if it broke.
    """

    def __init__(
        self,
        session: OwnedSession,
        url: str,
        headers: Mapping[str, str],
        update: dict[str, Any],
    ) -> None:
        self._session = session
        self._url = url
        self._headers = dict(headers)
        self._update = update
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._tasks = Supervisor("realtime session", log)  # the reader
        self.response_active = False
        self._closed = False

    async def __aenter__(self) -> RealtimeConversation:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        with translate_errors("realtime"):
            self._ws = await self._session.get().ws_connect(
                self._url,
                headers=self._headers,
                max_msg_size=self._session.caps.websocket_message_bytes,
            )
        await self._tasks.start()
        self._tasks.spawn(self._read(self._ws), name="realtime-reader")
        await self._send(self._update)

    async def _send(self, event: Mapping[str, Any]) -> None:
        if self._closed or self._ws is None:
            raise ProviderConnectionError("realtime: the session is closed", retryable=False)
        if self._ws.closed:
            raise ProviderConnectionError("realtime: the socket closed")
        with translate_errors("realtime"):
            await self._ws.send_str(json.dumps(event))

    async def push_audio(self, pcm: bytes) -> None:
        if pcm:
            await self._send(audio_append(pcm))

    async def cancel_response(self) -> None:
        if self.response_active:
            await self._send({"type": "response.cancel"})
            self.response_active = False

    async def say(self, text: str) -> None:
        """Make the assistant speak `text` verbatim now (control command `say`)."""
        await self.cancel_response()
        await self._send(text_item("system", f"The assistant now says, verbatim: {text}"))
        await self._send(response_create(SAY_INSTRUCTIONS + text))
        self.response_active = True

    async def user_text(self, text: str) -> None:
        """A turn of the caller's that was typed, not spoken (the keypad): the model answers
        it, after what it has heard so far (a reply in flight is cancelled first)."""
        await self._send(text_item("user", text))
        await self.cancel_response()
        await self._send(response_create())
        self.response_active = True

    async def inject_context(self, text: str, *, respond: bool = False) -> None:
        await self._send(text_item("system", text))
        if respond:
            await self.cancel_response()
            await self._send(response_create())
            self.response_active = True

    async def function_result(self, call_id: str, output: str, *, respond: bool) -> None:
        """A function call's result for the model; with ``respond`` it answers from it."""
        await self._send(function_output(call_id, output))
        if respond:
            await self._send(response_create())
            self.response_active = True

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if too_big(msg):
                    cap = self._session.caps.websocket_message_bytes
                    await self._events.put(too_large("realtime", "message", cap))
                    return
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    kind, event = parse_server_event(msg.data)
                except ProviderResponseError as exc:
                    await self._events.put(exc)
                    return
                if kind == "response.created":
                    self.response_active = True
                elif kind == "response.done":
                    self.response_active = False
                if event is not None:
                    await self._events.put(event)
            if ws.close_code not in (1000, None) and not self._closed:
                await self._events.put(
                    ProviderConnectionError(f"realtime: socket closed {ws.close_code}")
                )
        finally:
            await self._events.put(_END)

    def __aiter__(self) -> AsyncIterator[RealtimeEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RealtimeEvent]:
        while True:
            item = await self._events.get()
            if item is _END:
                await self._events.put(_END)
                return
            if isinstance(item, Exception):
                raise item
            yield item  # type: ignore[misc]

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws is not None:
            await self._ws.close()
        await self._tasks.aclose()
        await self._events.put(_END)
