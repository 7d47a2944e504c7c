"""Pure codec for voicedock's side of the FreeSWITCH audio-stream websocket (mod_audio_stream).

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

This module holds voicedock's (the server's) half: the metadata it reads, the ``streamAudio``
message it sends and the play event it is told of. What the module does with them (its frames,
its reading of ``streamAudio``) is the fake FreeSWITCH's (``tests/pbx/freeswitch``), checked
against this half byte for byte.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Literal

from voicedock.domain.json import JsonObject, json_object
from voicedock.errors import MediaError

RAW_SAMPLE_RATES = frozenset({8000, 16000, 24000, 32000, 48000, 64000})
AudioDataType = Literal["raw", "wav", "mp3", "ogg"]
_AUDIO_DATA_TYPES = frozenset({"raw", "wav", "mp3", "ogg"})


class AudioStreamWireError(MediaError):
    """A message on the audio-stream websocket does not follow the module's format."""


@dataclass(frozen=True, slots=True)
class StreamMetadata:
    """The first TEXT frame: the raw text and, when it is a JSON object, its fields."""

    text: str
    fields: JsonObject | None


def parse_metadata(text: str) -> StreamMetadata:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return StreamMetadata(text, None)
    return StreamMetadata(text, json_object(value))


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


@dataclass(frozen=True, slots=True)
class PlayEvent:
    """Body of the CUSTOM event ``mod_audio_stream::play``: the file FreeSWITCH wrote."""

    file: str
    audio_data_type: str
    sample_rate: int | None


def parse_play_event_body(body: str) -> PlayEvent:
    try:
        data = json_object(json.loads(body))
    except json.JSONDecodeError as exc:
        raise AudioStreamWireError("play event body is not JSON") from exc
    file = data.get("file") if data is not None else None
    if data is None or not isinstance(file, str):
        raise AudioStreamWireError("play event body has no 'file'")
    rate = data.get("sampleRate")
    return PlayEvent(
        file=file,
        audio_data_type=str(data.get("audioDataType", data.get("audioContentType", "raw"))),
        sample_rate=rate if isinstance(rate, int) else None,
    )
