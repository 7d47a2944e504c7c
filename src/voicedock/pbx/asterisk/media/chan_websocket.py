"""Wire codec for Asterisk chan_websocket control messages (pure: text in, dataclasses out).

Asterisk sends TEXT frames in one of two formats, chosen per channel (``chan_websocket.conf``
``control_message_format`` or the dial option ``f(json)``):

* plain text: ``MEDIA_START connection_id:… channel:… format:ulaw optimal_frame_size:160 ptime:20``,
  ``MEDIA_MARK_PROCESSED <id>``, ``QUEUE_DRAINED``, ``ERROR channel_id:… error_text:<free text>``
* JSON: ``{"event":"MEDIA_START", …, "channel_variables":{…}}``

``parse_event`` accepts both and never raises: anything it cannot understand becomes an
``UnknownMessage`` carrying the reason, so one odd message cannot take a call down.
``encode_command`` builds our commands in either format and enforces Asterisk's limits: commands
longer than 128 bytes are silently dropped by Asterisk, so we refuse to build them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from voicedock.domain.json import json_object
from voicedock.media.errors import MediaProtocolError

# Client mode: the channel variables voicedock sets on a media leg, which MEDIA_START carries
# back: the call the connection is for, and the token that proves Asterisk opened it.
CALL_VARIABLE: Final = "VOICEDOCK_CALL"
TOKEN_VARIABLE: Final = "VOICEDOCK_MEDIA_TOKEN"  # noqa: S105 - a variable name

MAX_COMMAND_BYTES: Final = 128
"""chan_websocket's MAX_TEXT_MESSAGE_LEN; longer TEXT messages are ignored without a reply."""

_CORRELATION_ID: Final = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,100}")
"""Printable ASCII without space, quote or backslash: safe in both formats, no escaping needed."""


class ControlFormat(StrEnum):
    PLAIN = "plain-text"
    JSON = "json"


class MediaDirection(StrEnum):
    """Media direction from the app's point of view (``in`` = Asterisk sends to us only)."""

    BOTH = "both"
    IN = "in"
    OUT = "out"


class Command(StrEnum):
    ANSWER = "ANSWER"
    HANGUP = "HANGUP"
    GET_STATUS = "GET_STATUS"
    REPORT_QUEUE_DRAINED = "REPORT_QUEUE_DRAINED"
    MARK_MEDIA = "MARK_MEDIA"
    START_MEDIA_BUFFERING = "START_MEDIA_BUFFERING"
    STOP_MEDIA_BUFFERING = "STOP_MEDIA_BUFFERING"
    FLUSH_MEDIA = "FLUSH_MEDIA"
    PAUSE_MEDIA = "PAUSE_MEDIA"
    CONTINUE_MEDIA = "CONTINUE_MEDIA"
    SET_MEDIA_DIRECTION = "SET_MEDIA_DIRECTION"


_TAKES_CORRELATION_ID: Final = frozenset({Command.MARK_MEDIA, Command.STOP_MEDIA_BUFFERING})


# --- Events (Asterisk → us) ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaStart:
    """First TEXT frame of every media connection."""

    connection_id: str
    channel: str
    channel_id: str
    format: str
    optimal_frame_size: int
    ptime: int
    channel_variables: Mapping[str, str] = field(default_factory=dict)
    """JSON format only: the externalMedia ``variables`` (how client mode finds its call)."""


@dataclass(frozen=True, slots=True)
class Status:
    channel_id: str
    queue_length: int
    xon_level: int
    xoff_level: int
    queue_full: bool
    bulk_media: bool
    media_paused: bool


@dataclass(frozen=True, slots=True)
class QueueDrained:
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class MarkProcessed:
    correlation_id: str
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class BufferingCompleted:
    correlation_id: str
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediaXoff:
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class MediaXon:
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class DtmfEnd:
    digit: str
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class AsteriskError:
    """An ERROR event: Asterisk refused one of our commands."""

    error_text: str
    channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A TEXT message we could not understand; ``reason`` says why."""

    raw: str
    reason: str


ControlEvent = (
    MediaStart
    | Status
    | QueueDrained
    | MarkProcessed
    | BufferingCompleted
    | MediaXoff
    | MediaXon
    | DtmfEnd
    | AsteriskError
    | UnknownMessage
)


class _Malformed(Exception):
    """Internal: a known event with missing or mistyped fields."""


def parse_event(message: str | bytes) -> ControlEvent:
    """Parse one TEXT frame from Asterisk (plain-text or JSON). Never raises."""
    if isinstance(message, bytes | bytearray):
        try:
            message = bytes(message).decode("utf-8")
        except UnicodeDecodeError:
            return UnknownMessage(repr(message[:200]), "not valid UTF-8")
    text = message.strip()
    try:
        if text.startswith("{"):
            return _parse_json(text)
        return _parse_plain(text)
    except _Malformed as exc:
        return UnknownMessage(text, str(exc))


# --- plain text ---


def _parse_plain(text: str) -> ControlEvent:
    name, _, rest = text.partition(" ")
    if name in ("MEDIA_MARK_PROCESSED", "MEDIA_BUFFERING_COMPLETED"):
        # The argument is everything after the first space; it may be absent.
        cls = MarkProcessed if name == "MEDIA_MARK_PROCESSED" else BufferingCompleted
        return cls(correlation_id=rest.strip())
    if name == "QUEUE_DRAINED":
        return QueueDrained()
    if name == "MEDIA_XOFF":
        return MediaXoff()
    if name == "MEDIA_XON":
        return MediaXon()
    if name in _KEYED_BUILDERS:
        return _KEYED_BUILDERS[name](_key_values(rest))
    return UnknownMessage(text, f"unknown event {name[:40]!r}")


def _key_values(rest: str) -> dict[str, str]:
    """``a:1 b:two words error_text:free text`` → dict.

    ``error_text`` is free text and always last, so it takes the rest of the line. A token without
    a colon continues the previous value (values with spaces, e.g. channel names, stay intact).
    """
    values: dict[str, str] = {}
    last_key: str | None = None
    remaining = rest
    while remaining:
        token, _, remaining = remaining.partition(" ")
        key, colon, value = token.partition(":")
        if colon and key == "error_text":
            values[key] = f"{value} {remaining}" if remaining else value
            break
        if colon and key.isidentifier():
            values[key] = value
            last_key = key
        elif last_key is not None:
            values[last_key] += " " + token
    return values


def _require(values: Mapping[str, object], key: str) -> str:
    value = values.get(key)
    if value is None:
        raise _Malformed(f"missing {key}")
    return str(value)


def _require_int(values: Mapping[str, object], key: str) -> int:
    value = values.get(key)
    if isinstance(value, bool):
        raise _Malformed(f"{key} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise _Malformed(f"{key} is missing or not an integer")


def _require_bool(values: Mapping[str, object], key: str) -> bool:
    value = values.get(key)
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise _Malformed(f"{key} is missing or not a boolean")


def _optional_str(values: Mapping[str, object], key: str) -> str | None:
    value = values.get(key)
    return None if value is None else str(value)


def _clean_error_text(text: str) -> str:
    # Some Asterisk error texts end in a newline (seen escaped as a literal "\n" in captures).
    text = text.rstrip()
    return text.removesuffix("\\n").rstrip()


def _build_media_start(values: Mapping[str, object]) -> MediaStart:
    variables = values.get("channel_variables") or {}
    if not isinstance(variables, Mapping):
        raise _Malformed("channel_variables is not an object")
    return MediaStart(
        connection_id=_require(values, "connection_id"),
        channel=_require(values, "channel"),
        channel_id=_require(values, "channel_id"),
        format=_require(values, "format"),
        optimal_frame_size=_require_int(values, "optimal_frame_size"),
        ptime=_require_int(values, "ptime"),
        channel_variables={str(k): str(v) for k, v in variables.items()},
    )


def _build_status(values: Mapping[str, object]) -> Status:
    return Status(
        channel_id=_require(values, "channel_id"),
        queue_length=_require_int(values, "queue_length"),
        xon_level=_require_int(values, "xon_level"),
        xoff_level=_require_int(values, "xoff_level"),
        queue_full=_require_bool(values, "queue_full"),
        bulk_media=_require_bool(values, "bulk_media"),
        media_paused=_require_bool(values, "media_paused"),
    )


def _build_dtmf(values: Mapping[str, object]) -> DtmfEnd:
    digit = _require(values, "digit")
    if len(digit) != 1:
        raise _Malformed("digit is not a single character")
    return DtmfEnd(digit=digit, channel_id=_optional_str(values, "channel_id"))


def _build_error(values: Mapping[str, object]) -> AsteriskError:
    return AsteriskError(
        error_text=_clean_error_text(_require(values, "error_text")),
        channel_id=_optional_str(values, "channel_id"),
    )


_KEYED_BUILDERS: Final[dict[str, Callable[[Mapping[str, object]], ControlEvent]]] = {
    "MEDIA_START": _build_media_start,
    "STATUS": _build_status,
    "DTMF_END": _build_dtmf,
    "ERROR": _build_error,
}


# --- JSON ---


def _parse_json(text: str) -> ControlEvent:
    try:
        data = json_object(json.loads(text))
    except ValueError:
        return UnknownMessage(text, "invalid JSON")
    name = data.get("event") if data is not None else None
    if data is None or not isinstance(name, str):
        return UnknownMessage(text, "JSON without an event name")
    channel_id = _optional_str(data, "channel_id")
    correlation_id = _optional_str(data, "correlation_id") or ""
    if name == "MEDIA_MARK_PROCESSED":
        return MarkProcessed(correlation_id=correlation_id, channel_id=channel_id)
    if name == "MEDIA_BUFFERING_COMPLETED":
        return BufferingCompleted(correlation_id=correlation_id, channel_id=channel_id)
    if name == "QUEUE_DRAINED":
        return QueueDrained(channel_id)
    if name == "MEDIA_XOFF":
        return MediaXoff(channel_id)
    if name == "MEDIA_XON":
        return MediaXon(channel_id)
    if name in _KEYED_BUILDERS:
        return _KEYED_BUILDERS[name](data)
    return UnknownMessage(text, f"unknown event {name[:40]!r}")


# --- Commands (us → Asterisk) -------------------------------------------------------------------


def validate_correlation_id(correlation_id: str) -> str:
    """Return ``correlation_id`` if it is safe to send, else raise MediaProtocolError."""
    if not _CORRELATION_ID.fullmatch(correlation_id):
        raise MediaProtocolError(
            "correlation id must be 1-100 printable ASCII characters without space, quote or "
            "backslash"
        )
    return correlation_id


def encode_command(
    command: Command,
    control_format: ControlFormat = ControlFormat.PLAIN,
    *,
    correlation_id: str | None = None,
    direction: MediaDirection | None = None,
) -> str:
    """Serialize one command as a TEXT frame payload, checked against Asterisk's rules."""
    if correlation_id is not None:
        if command not in _TAKES_CORRELATION_ID:
            raise MediaProtocolError(f"{command} takes no correlation id")
        validate_correlation_id(correlation_id)
    if (direction is None) != (command is not Command.SET_MEDIA_DIRECTION):
        raise MediaProtocolError("direction goes with SET_MEDIA_DIRECTION, and only there")

    if control_format is ControlFormat.JSON:
        body: dict[str, str] = {"command": command.value}
        if correlation_id is not None:
            body["correlation_id"] = correlation_id
        if direction is not None:
            body["direction"] = direction.value
        text = json.dumps(body, separators=(",", ":"))
    else:
        if command is Command.SET_MEDIA_DIRECTION:
            raise MediaProtocolError("SET_MEDIA_DIRECTION only exists in the JSON format")
        text = command.value if correlation_id is None else f"{command.value} {correlation_id}"

    if len(text.encode("utf-8")) > MAX_COMMAND_BYTES:
        raise MediaProtocolError(f"command longer than {MAX_COMMAND_BYTES} bytes: shorten the id")
    return text
