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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp
import msgspec

from voicedock.domain.assistant_config import RealtimeConfig
from voicedock.egress import Egress
from voicedock.pipeline.providers._http import (
    OwnedSession,
    Timeouts,
    endpoint,
    require_key,
    translate_errors,
)
from voicedock.pipeline.providers.base import (
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
)
from voicedock.pipeline.providers.socket_session import SocketSession
from voicedock.pipeline.tools import ToolSpec

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
    """An `error` event: the session stays open (e.g. cancelling when nothing is active).
    ``kind`` is the error's type: ``invalid_request_error`` (voicedock's), ``server_error``
    (the provider's)."""

    code: str
    message: str
    kind: str = ""


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


class _PcmFormat(msgspec.Struct, kw_only=True):
    type: str = "audio/pcm"
    rate: int


class _AudioFormat(msgspec.Struct):
    format: _PcmFormat


class _Audio(msgspec.Struct):
    input: _AudioFormat
    output: _AudioFormat


class _TurnDetection(msgspec.Struct):
    type: str


class _Session(msgspec.Struct, kw_only=True, omit_defaults=True):
    instructions: str
    voice: str
    turn_detection: _TurnDetection
    audio: _Audio
    tools: tuple[dict[str, object], ...] = ()  # the tools' JSON Schemas are open


class _InputText(msgspec.Struct, tag_field="type", tag="input_text"):
    text: str


class _Message(msgspec.Struct, tag_field="type", tag="message"):
    role: Literal["user", "system"]
    content: tuple[_InputText]


class _FunctionCallOutput(msgspec.Struct, tag_field="type", tag="function_call_output"):
    call_id: str
    output: str


class _ResponseOptions(msgspec.Struct):
    instructions: str


class _ClientEvent(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    """An event voicedock sends (its ``type`` is the struct's tag)."""


class SessionUpdate(_ClientEvent, tag="session.update"):
    session: _Session


class AudioAppend(_ClientEvent, tag="input_audio_buffer.append"):
    audio: bytes  # sent base64, as the API takes it


class ItemCreate(_ClientEvent, tag="conversation.item.create"):
    item: _Message | _FunctionCallOutput


class ResponseCreate(_ClientEvent, tag="response.create"):
    response: _ResponseOptions | None = None


class ResponseCancel(_ClientEvent, tag="response.cancel"):
    pass


ClientEvent = SessionUpdate | AudioAppend | ItemCreate | ResponseCreate | ResponseCancel
_encode = msgspec.json.Encoder().encode


def session_update(
    *,
    instructions: str,
    voice: str,
    sample_rate: int,
    turn_detection: str = "server_vad",
    tools: Sequence[ToolSpec] = (),
) -> SessionUpdate:
    pcm = _AudioFormat(_PcmFormat(rate=sample_rate))
    return SessionUpdate(
        session=_Session(
            instructions=instructions,
            voice=voice,
            turn_detection=_TurnDetection(turn_detection),
            audio=_Audio(input=pcm, output=pcm),
            tools=tuple({"type": "function", **t.openai_tool()["function"]} for t in tools),
        )
    )


def function_output(call_id: str, output: str) -> ItemCreate:
    return ItemCreate(item=_FunctionCallOutput(call_id, output))


def audio_append(pcm: bytes) -> AudioAppend:
    return AudioAppend(audio=pcm)


def text_item(role: Literal["user", "system"], text: str) -> ItemCreate:
    return ItemCreate(item=_Message(role, (_InputText(text),)))


def response_create(instructions: str | None = None) -> ResponseCreate:
    options = None if instructions is None else _ResponseOptions(instructions)
    return ResponseCreate(response=options)


class _Kind(msgspec.Struct):
    type: object = ""  # the event's name; one voicedock does not read is passed over


class _Delta(msgspec.Struct):
    delta: str = ""


class _AudioDelta(msgspec.Struct):
    delta: bytes = b""  # base64 on the wire


class _InputTranscription(msgspec.Struct):
    transcript: str = ""


class _SpeechStopped(msgspec.Struct):
    audio_end_ms: int | float | bool | None = None  # only an int is a position


class _FunctionCallDone(msgspec.Struct):
    call_id: str = ""
    name: str = ""
    arguments: str = ""


class _ResponseStatus(msgspec.Struct):
    status: str = "completed"


class _ResponseDone(msgspec.Struct):
    response: _ResponseStatus | None = None


class _ErrorBody(msgspec.Struct):
    code: str | None = None
    type: str | None = None
    message: str = ""


class _ErrorEvent(msgspec.Struct):
    error: _ErrorBody | None = None


_decode_kind = msgspec.json.Decoder(_Kind).decode
_decode_delta = msgspec.json.Decoder(_Delta).decode
_decode_audio = msgspec.json.Decoder(_AudioDelta).decode


def _event_of(kind: str, text: str) -> RealtimeEvent | None:
    if kind in _AUDIO_DELTAS:
        return RealtimeAudio(_decode_audio(text).delta)
    if kind in _TEXT_DELTAS:
        return RealtimeTranscript("assistant", _decode_delta(text).delta, final=False)
    if kind == "conversation.item.input_audio_transcription.completed":
        heard = msgspec.json.decode(text, type=_InputTranscription)
        return RealtimeTranscript("user", heard.transcript, final=True)
    if kind == "input_audio_buffer.speech_started":
        return RealtimeSpeechStarted()
    if kind == "input_audio_buffer.speech_stopped":
        end = msgspec.json.decode(text, type=_SpeechStopped).audio_end_ms
        return RealtimeSpeechStopped(end if type(end) is int else None)
    if kind == "response.function_call_arguments.done":
        call = msgspec.json.decode(text, type=_FunctionCallDone)
        return RealtimeFunctionCall(call.call_id, call.name, call.arguments)
    if kind == "response.done":
        response = msgspec.json.decode(text, type=_ResponseDone).response
        return RealtimeResponseDone("completed" if response is None else response.status)
    if kind == "error":
        err = msgspec.json.decode(text, type=_ErrorEvent).error or _ErrorBody()
        return RealtimeError(err.code or err.type or "", err.message, err.type or "")
    return None


def parse_server_event(text: str) -> tuple[str, RealtimeEvent | None]:
    """(event type, typed event or None for events the call does not need)."""
    try:
        kind = str(_decode_kind(text).type)
    except msgspec.ValidationError as exc:
        raise ProviderResponseError("realtime: event is not an object") from exc
    except msgspec.DecodeError as exc:
        raise ProviderResponseError("realtime: event is not JSON") from exc
    try:
        return kind, _event_of(kind, text)
    except msgspec.ValidationError as exc:
        if kind in _AUDIO_DELTAS:
            raise ProviderResponseError("realtime: audio delta is not base64") from exc
        raise ProviderResponseError(f"realtime: the {kind} event is malformed") from exc


class RealtimeSpeech:
    """Configuration and connection factory of the speech-to-speech provider."""

    def __init__(self, config: RealtimeConfig, *, egress: Egress | None = None) -> None:
        self._headers = {"Authorization": f"Bearer {require_key('realtime', config.api_key or '')}"}
        checked = endpoint("realtime", config.url or XAI_REALTIME_URL)
        self._url = str(checked.with_query(model=config.model) if config.model else checked)
        self._config = config
        self.sample_rate = config.sample_rate or 24000
        self._session = OwnedSession(Timeouts.from_config(config), egress)

    def connect(
        self, instructions: str | None = None, tools: Sequence[ToolSpec] = ()
    ) -> RealtimeConversation:
        config = self._config
        update = session_update(
            instructions=(config.instructions or "") if instructions is None else instructions,
            voice=config.voice or "Ara",
            sample_rate=self.sample_rate,
            tools=tools,
        )
        return RealtimeConversation(self._session, self._url, self._headers, update)

    async def aclose(self) -> None:
        await self._session.aclose()


class RealtimeConversation(SocketSession[RealtimeEvent]):
    """One live speech-to-speech session; `async with speech.connect() as conv`.

    Owns its socket and reader task; aclose() stops both. Iterating yields RealtimeEvents
    until the server closes the session, or raises ProviderConnectionError if it broke.
    """

    def __init__(
        self,
        session: OwnedSession,
        url: str,
        headers: Mapping[str, str],
        update: SessionUpdate,
    ) -> None:
        super().__init__("realtime", "session", session, url, headers)
        self._update = update
        self.response_active = False
        self.ended = False  # the session is over: closed, broken, or a send failed

    async def _connected(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await self._send(self._update)

    async def _send(self, event: ClientEvent) -> None:
        try:
            ws = self._socket()
            with translate_errors("realtime"):
                await ws.send_str(_encode(event).decode())
        except ProviderError:
            self.ended = True
            raise

    async def push_audio(self, pcm: bytes) -> None:
        if pcm:
            await self._send(audio_append(pcm))

    async def cancel_response(self) -> None:
        if self.response_active:
            await self._send(ResponseCancel())
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
                if await self._over_cap(msg):
                    return
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    kind, event = parse_server_event(msg.data)
                except ProviderResponseError as exc:
                    await self._items.put(exc)
                    return
                if kind == "response.created":
                    self.response_active = True
                elif kind == "response.done":
                    self.response_active = False
                if event is not None:
                    await self._items.put(event)
            if ws.close_code not in (1000, None) and not self._closed:
                await self._items.put(
                    ProviderConnectionError(f"realtime: socket closed {ws.close_code}")
                )
        finally:
            self.ended = True
            await self._items.end()
