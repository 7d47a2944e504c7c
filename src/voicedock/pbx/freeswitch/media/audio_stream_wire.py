"""Pure codec for the FreeSWITCH audio-stream websocket (mod_audio_stream, mod_audio_fork).

FreeSWITCH is the websocket *client*; voicedock is the server. Based on
``amigniter/mod_audio_stream`` (README, ``mod_audio_stream.c``, ``audio_streamer_glue.cpp``)
and ``drachtio/drachtio-freeswitch-modules`` / ``jambonz/freeswitch-modules`` ``mod_audio_fork``
(``lws_glue.cpp``):

* First, if the ``start`` command had metadata, one TEXT frame carrying it verbatim (any UTF-8,
  usually JSON).
* Then BINARY frames of raw L16: signed 16-bit little-endian PCM (FreeSWITCH's native sample
  layout), resampled to the requested rate, 20 ms per frame unless ``STREAM_BUFFER_SIZE`` is
  set; ``stereo`` interleaves caller and callee samples.
* Back to FreeSWITCH (community mod_audio_stream): TEXT
  ``{"type":"streamAudio","data":{"audioDataType":"raw","sampleRate":8000,"audioData":"<b64>"}}``.
  The module writes the audio to ``<temp>/<uuid>_<n>.tmp.<ext>`` and fires the CUSTOM event
  ``mod_audio_stream::play`` whose body is ``data`` without ``audioData`` plus ``"file"``;
  it does **not** play it: the ESL client must (``playback`` of the file, queued with ``sendmsg``).
* mod_audio_fork takes ``{"type":"playAudio","data":{"audioContentType":"raw","sampleRate":
  8000,"audioContent":"<b64>"}}`` (same file-then-event behaviour) and ``{"type":"killAudio"}``
  (breaks the current playback); the jambonz fork can also take binary audio directly.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Literal

from voicedock.errors import MediaError

RAW_SAMPLE_RATES = frozenset({8000, 16000, 24000, 32000, 48000, 64000})
AudioDataType = Literal["raw", "wav", "mp3", "ogg"]
_AUDIO_DATA_TYPES = frozenset({"raw", "wav", "mp3", "ogg"})
FRAME_MS = 20


class AudioStreamWireError(MediaError):
    """A message on the audio-stream websocket does not follow the module's format."""


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What the ``start`` command asked for: rate (Hz) and 1 (mono/mixed) or 2 (stereo)."""

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


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """The first TEXT frame: the raw text and, when it is a JSON object, its fields."""

    text: str
    fields: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class L16Frame:
    """A BINARY frame of little-endian signed 16-bit PCM."""

    pcm: bytes
    format: StreamFormat

    @property
    def samples_per_channel(self) -> int:
        return len(self.pcm) // (2 * self.format.channels)

    @property
    def duration_ms(self) -> float:
        return 1000 * self.samples_per_channel / self.format.sample_rate


@dataclass(frozen=True, slots=True)
class StreamAudio:
    """Audio sent back to FreeSWITCH (``streamAudio`` / ``playAudio``)."""

    audio: bytes
    sample_rate: int
    audio_data_type: str = "raw"


def parse_metadata(text: str) -> StreamMetadata:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return StreamMetadata(text, None)
    return StreamMetadata(text, value if isinstance(value, dict) else None)


def parse_l16_frame(data: bytes, fmt: StreamFormat) -> L16Frame:
    """Validate a BINARY frame: whole samples for every channel, nothing else."""
    if not data or len(data) % (2 * fmt.channels):
        raise AudioStreamWireError(f"L16 frame of {len(data)} bytes is not whole samples")
    return L16Frame(bytes(data), fmt)


def split_l16_frames(pcm: bytes, fmt: StreamFormat) -> list[bytes]:
    """Cut PCM into 20 ms frames the way the module sends them (the last may be short)."""
    size = fmt.bytes_per_frame
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def _check_audio(audio: bytes, sample_rate: int, audio_data_type: str) -> None:
    if audio_data_type not in _AUDIO_DATA_TYPES:
        raise AudioStreamWireError(f"unsupported audio data type {audio_data_type!r}")
    if audio_data_type == "raw" and sample_rate not in RAW_SAMPLE_RATES:
        raise AudioStreamWireError(f"raw audio sample rate {sample_rate} not supported")
    if audio_data_type == "raw" and len(audio) % 2:
        raise AudioStreamWireError("raw L16 audio must be whole 16-bit samples")
    if not audio:
        raise AudioStreamWireError("audio must not be empty")


def encode_stream_audio(
    audio: bytes, sample_rate: int, audio_data_type: AudioDataType = "raw"
) -> str:
    """mod_audio_stream ``streamAudio`` TEXT message."""
    _check_audio(audio, sample_rate, audio_data_type)
    data = {
        "audioDataType": audio_data_type,
        "sampleRate": sample_rate,
        "audioData": base64.b64encode(audio).decode("ascii"),
    }
    return json.dumps({"type": "streamAudio", "data": data}, separators=(",", ":"))


def encode_play_audio(audio: bytes, sample_rate: int) -> str:
    """mod_audio_fork ``playAudio`` TEXT message with raw L16 content."""
    _check_audio(audio, sample_rate, "raw")
    data = {
        "audioContentType": "raw",
        "sampleRate": sample_rate,
        "audioContent": base64.b64encode(audio).decode("ascii"),
    }
    return json.dumps({"type": "playAudio", "data": data}, separators=(",", ":"))


def encode_kill_audio() -> str:
    """mod_audio_fork ``killAudio``: stop the current playback (mod_audio_stream ignores it)."""
    return json.dumps({"type": "killAudio"}, separators=(",", ":"))


def parse_server_message(text: str) -> tuple[str, StreamAudio | None]:
    """What a module does with a TEXT message from us: ``(type, audio or None)``."""
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AudioStreamWireError("server message is not JSON") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise AudioStreamWireError("server message has no string 'type'")
    kind: str = message["type"]
    data = message.get("data")
    if kind not in ("streamAudio", "playAudio"):
        return kind, None
    if not isinstance(data, dict):
        raise AudioStreamWireError(f"{kind} without a data object")
    fork = kind == "playAudio"
    content = data.get("audioContent" if fork else "audioData")
    data_type = data.get("audioContentType" if fork else "audioDataType", "raw")
    rate = data.get("sampleRate", 8000)
    if not isinstance(content, str) or not isinstance(rate, int):
        raise AudioStreamWireError(f"{kind}: audio must be base64 text, sampleRate an int")
    try:
        audio = base64.b64decode(content, validate=True)
    except binascii.Error as exc:
        raise AudioStreamWireError(f"{kind}: audio is not valid base64") from exc
    data_type = "wav" if data_type == "wave" else str(data_type)
    _check_audio(audio, rate, data_type)
    return kind, StreamAudio(audio, rate, data_type)


@dataclass(frozen=True, slots=True)
class PlayEvent:
    """Body of the CUSTOM event ``mod_audio_stream::play``: the file FreeSWITCH wrote."""

    file: str
    audio_data_type: str
    sample_rate: int | None


def parse_play_event_body(body: str) -> PlayEvent:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise AudioStreamWireError("play event body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("file"), str):
        raise AudioStreamWireError("play event body has no 'file'")
    rate = data.get("sampleRate")
    return PlayEvent(
        file=data["file"],
        audio_data_type=str(data.get("audioDataType", data.get("audioContentType", "raw"))),
        sample_rate=rate if isinstance(rate, int) else None,
    )
