"""What mod_audio_stream does on ``uuid_audio_stream <uuid> start``, for the fake FreeSWITCH.

Byte layout from ``amigniter/mod_audio_stream`` (``audio_streamer_glue.cpp``): the module is the
websocket client; on connect it sends the metadata as the first TEXT frame, then BINARY L16
frames (20 ms each at the requested rate). A ``streamAudio`` TEXT message from the server is
decoded, written to ``<temp_dir>/<uuid>_<n>.tmp.r<rate/1000>`` (``n`` counts from 0) and
announced with the CUSTOM event ``mod_audio_stream::play`` whose body is the message's ``data``
without ``audioData`` plus ``"file"``; nothing is played until the ESL client asks
(``uuid_broadcast``). Other TEXT messages become ``mod_audio_stream::json``.

The module's websocket client (libwsc) gives up on a connection whose handshake is not answered
within 1 s (``WebSocketClient::connection_timeout``, never set by the module): it fires
``mod_audio_stream::error`` with ``TIMEOUT_ERROR`` and drops the stream (``GiveUp``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from voicedock.pbx.freeswitch.media.audio_stream_wire import RAW_SAMPLE_RATES, AudioStreamWireError

FAKE_TEMP_DIR = "/tmp/fake-freeswitch"
# (subclass, body) -> None: the fake FreeSWITCH turns it into a CUSTOM event of the channel.
CustomEventSink = Callable[[str, str], None]


FRAME_MS = 20
# The error event's body when libwsc's connection timeout expired (ErrorCode::TIMEOUT is 10).
TIMEOUT_ERROR = '{"status":"error","message":{"code":10,"error":"Timeout"}}'


class GiveUp(enum.Enum):
    """How the module gives up on a connection voicedock answered too late (its event loop held
    up past libwsc's 1 s, as on a loaded machine): before voicedock read it (``UNSEEN``: no
    connection ever reaches voicedock), or after voicedock accepted it too late (``DROPPED``:
    it closes before sending anything). The error event comes first either way."""

    UNSEEN = "unseen"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What ``uuid_audio_stream ... start`` asked the module for: rate (Hz) and 1 (mono or
    mixed) or 2 (stereo) channels."""

    sample_rate: int = 8000
    channels: int = 1

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.sample_rate % 8000:
            raise AudioStreamWireError("sample rate must be a multiple of 8000")
        if self.channels not in (1, 2):
            raise AudioStreamWireError("channels must be 1 or 2")

    @property
    def bytes_per_frame(self) -> int:
        """Bytes in one 20 ms frame: rate/50 samples × 2 bytes × channels."""
        return self.sample_rate * FRAME_MS // 1000 * 2 * self.channels


def split_l16_frames(pcm: bytes, fmt: StreamFormat) -> list[bytes]:
    """Cut PCM into 20 ms frames the way the module sends them (the last may be short)."""
    size = fmt.bytes_per_frame
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


@dataclass(frozen=True, slots=True)
class StreamAudio:
    """The audio of a ``streamAudio`` message, as the module decodes it."""

    audio: bytes
    sample_rate: int
    audio_data_type: str = "raw"


def parse_server_message(text: str) -> tuple[str, StreamAudio | None]:
    """What the module does with a TEXT message from voicedock (``processMessage``):
    ``(type, audio)`` for ``streamAudio``, ``(type, None)`` for any other type."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AudioStreamWireError("server message is not JSON") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise AudioStreamWireError("server message has no string 'type'")
    kind: str = message["type"]
    if kind != "streamAudio":
        return kind, None
    data = message.get("data")
    if not isinstance(data, dict):
        raise AudioStreamWireError(f"{kind} without a data object")
    content, rate = data.get("audioData"), data.get("sampleRate", 8000)
    if not isinstance(content, str) or not isinstance(rate, int):
        raise AudioStreamWireError(f"{kind}: audio must be base64 text, sampleRate an int")
    try:
        audio = base64.b64decode(content, validate=True)
    except binascii.Error as exc:
        raise AudioStreamWireError(f"{kind}: audio is not valid base64") from exc
    data_type = str(data.get("audioDataType", "raw"))
    if not audio or (data_type == "raw" and (len(audio) % 2 or rate not in RAW_SAMPLE_RATES)):
        raise AudioStreamWireError(f"{kind}: not whole L16 samples at a rate the module takes")
    return kind, StreamAudio(audio, rate, data_type)


class FakeAudioStreamClient:
    """Connect, send the metadata TEXT frame, then L16 BINARY frames; collect what comes back.

    ``run(frames)`` sends a fixed list and lingers (a bare client for wire tests);
    ``serve(frames)`` behaves like the module on a live channel: it keeps the stream open,
    sends what ``send_audio`` queues, and writes ``streamAudio`` chunks to (fake) files.
    """

    def __init__(
        self,
        url: str,
        metadata: str | None,
        *,
        sample_rate: int = 8000,
        channels: int = 1,
        channel_uuid: str = "",
        on_event: CustomEventSink | None = None,
    ) -> None:
        self.url = url
        self.metadata = metadata
        self.sample_rate = sample_rate
        self.channels = channels
        self.channel_uuid = channel_uuid
        self.received_text: list[str] = []
        self.received_binary: list[bytes] = []
        self.files: dict[str, bytes] = {}  # what the module wrote, by path
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()
        self.connect_error: str | None = None
        self._on_event = on_event
        self.stalled = False
        """While set, the silence between queued audio is not sent: a stream that stalls."""
        self._outgoing: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    @property
    def frame_bytes(self) -> int:
        return self.sample_rate // 50 * 2 * self.channels

    async def run(self, frames: list[bytes], *, pace: float = 0.0, linger: float = 0.2) -> None:
        """Send the frames, then keep receiving for ``linger`` seconds (or until closed)."""
        self._session = aiohttp.ClientSession()
        try:
            self._ws = await self._session.ws_connect(self.url)
            self.connected.set()
            if self.metadata is not None:
                await self._ws.send_str(self.metadata)
            for frame in frames:
                await self._ws.send_bytes(frame)
                if pace:
                    await asyncio.sleep(pace)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(linger):
                    await self._receive()
        finally:
            await self.aclose()
            self.finished.set()

    async def serve(
        self, frames: list[bytes], *, pace: float = 0.02, give_up: GiveUp | None = None
    ) -> None:
        """The live-channel behaviour: stream until ``stop()``, the hangup, or the server;
        ``give_up``: the connection times out instead, as libwsc's does."""
        self._session = aiohttp.ClientSession()
        try:
            if give_up is GiveUp.UNSEEN:
                self.connect_error = "Timeout"
                self._emit("mod_audio_stream::error", TIMEOUT_ERROR)
                return
            try:
                self._ws = await self._session.ws_connect(self.url)
            except aiohttp.ClientError as exc:
                self.connect_error = str(exc)
                self._emit("mod_audio_stream::error", json.dumps({"status": "error"}))
                return
            if give_up is GiveUp.DROPPED:
                self.connect_error = "Timeout"
                self._emit("mod_audio_stream::error", TIMEOUT_ERROR)
                return  # closed unused (aclose)
            self.connected.set()
            self._emit("mod_audio_stream::connect", '{"status":"connected"}')
            if self.metadata is not None:
                await self._ws.send_str(self.metadata)
            for frame in frames:
                self._outgoing.put_nowait(frame)
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(self._send_loop(pace))
                await self._receive()
                sender.cancel()
        finally:
            await self.aclose()
            self.finished.set()

    def send_audio(self, pcm: bytes) -> None:
        """The caller speaks: L16 at the stream rate, sent as 20 ms frames."""
        size = self.frame_bytes
        for i in range(0, len(pcm), size):
            self._outgoing.put_nowait(pcm[i : i + size])

    def stop(self) -> None:
        """``uuid_audio_stream <uuid> stop`` or the channel hung up."""
        self._outgoing.put_nowait(None)

    async def _send_loop(self, pace: float) -> None:
        """One frame per ``pace``: queued caller audio, else silence (the media bug never
        pauses while the channel has media)."""
        assert self._ws is not None
        silence = bytes(self.frame_bytes)
        while True:
            try:
                frame = self._outgoing.get_nowait()
            except asyncio.QueueEmpty:
                frame = silence if pace else await self._outgoing.get()
            if frame is None:
                break
            if frame is silence and self.stalled:
                await asyncio.sleep(pace)
                continue
            with contextlib.suppress(ConnectionError):
                await self._ws.send_bytes(frame)
            if pace:
                await asyncio.sleep(pace)
        await self._ws.close()

    async def _receive(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.received_text.append(message.data)
                self._on_text(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                self.received_binary.append(message.data)

    def _on_text(self, text: str) -> None:
        try:
            kind, audio = parse_server_message(text)
        except AudioStreamWireError:
            kind, audio = "", None
        if kind != "streamAudio" or audio is None:
            self._emit("mod_audio_stream::json", text)
            return
        data = json.loads(text)["data"]
        data.pop("audioData")
        rate = audio.sample_rate // 1000
        path = f"{FAKE_TEMP_DIR}/{self.channel_uuid}_{len(self.files)}.tmp.r{rate}"
        self.files[path] = audio.audio
        data["file"] = path
        self._emit("mod_audio_stream::play", json.dumps(data, separators=(",", ":")))

    def _emit(self, subclass: str, body: str) -> None:
        if self._on_event is not None:
            self._on_event(subclass, body)

    async def aclose(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
