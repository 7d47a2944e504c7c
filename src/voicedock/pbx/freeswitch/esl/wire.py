"""Pure codec for the FreeSWITCH Event Socket (ESL, ``mod_event_socket``) wire format.

Bytes in, typed messages out; no sockets. What each detail is based on
(``signalwire/freeswitch``, ``src/mod/event_handlers/mod_event_socket/mod_event_socket.c``,
and the "Event Socket Library" / "mod_event_socket" documentation):

* A packet is ``Name: value\\n`` header lines ended by an empty line (``\\n\\n``). When a
  ``Content-Length: N`` header is present, exactly N body bytes follow (``read_packet``).
* ``Content-Type`` tells what the packet is: ``auth/request`` (greeting), ``command/reply``
  (``Reply-Text: +OK ...`` / ``-ERR ...``), ``api/response`` (the body is the command output,
  ``api_exec``), ``text/event-plain`` / ``text/event-json`` (events), ``log/data``,
  ``text/disconnect-notice`` (``send_disconnect``), ``text/rude-rejection`` (ACL refusal).
* ``bgapi`` is answered by ``command/reply`` with ``Reply-Text: +OK Job-UUID: <uuid>`` and a
  ``Job-UUID`` header; the result comes later as a ``BACKGROUND_JOB`` event whose body is the
  command output. The client may choose the uuid with its own ``Job-UUID:`` header.
* ``text/event-plain`` bodies are header lines whose values are URL-encoded
  (``switch_event_serialize(..., encode=SWITCH_TRUE)``); an event body follows its own
  ``Content-Length`` inside the event. ``text/event-json`` bodies are one JSON object with the
  header names as keys and ``_body`` for the event body (``switch_event_serialize_json``);
  multi-valued headers are JSON arrays, shown in plain form as ``ARRAY::a|:b``.
* Commands are one line plus optional header lines, ended by ``\\n\\n``; FreeSWITCH treats a
  bare ``\\n`` as a line end, so CR, LF or NUL in any value would smuggle another command.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from voicedock.domain.json import json_object
from voicedock.errors import PbxError

MAX_HEADER_BLOCK = 64 * 1024  # a header block longer than this is a protocol error, not data
MAX_BODY = 16 * 1024 * 1024  # `show channels as json` on a busy box is large, but not this large


class EslProtocolError(PbxError):
    """The bytes from FreeSWITCH do not follow the ESL framing."""


class UnsafeWireValue(PbxError, ValueError):
    """A value would change the structure of an ESL command (CR, LF or NUL in it)."""


@dataclass(frozen=True, slots=True)
class EslMessage:
    """One ESL packet, of any kind: its outer headers and raw body."""

    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


@dataclass(frozen=True, slots=True)
class AuthRequest(EslMessage):
    """The greeting of an inbound connection: FreeSWITCH waits for ``auth``."""


@dataclass(frozen=True, slots=True)
class CommandReply(EslMessage):
    """Reply to every command except ``api``: ``Reply-Text: +OK ...`` or ``-ERR ...``."""

    @property
    def reply_text(self) -> str:
        return self.headers.get("Reply-Text", "")

    @property
    def ok(self) -> bool:
        return self.reply_text.startswith("+OK")

    @property
    def job_uuid(self) -> str | None:
        """For ``bgapi``: the Job-UUID header, else parsed from ``+OK Job-UUID: <uuid>``."""
        if uuid := self.headers.get("Job-UUID"):
            return uuid
        prefix = "+OK Job-UUID: "
        if self.reply_text.startswith(prefix):
            return self.reply_text[len(prefix) :].strip()
        return None


@dataclass(frozen=True, slots=True)
class ApiResponse(EslMessage):
    """The output of ``api <cmd>``; by convention an error starts with ``-ERR``."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def ok(self) -> bool:
        return not self.text.startswith("-ERR")


@dataclass(frozen=True, slots=True)
class EslEvent(EslMessage):
    """A decoded event (plain or JSON): event headers plus an optional event body."""

    event_headers: Mapping[str, str] = field(default_factory=dict)
    event_body: str | None = None

    @property
    def name(self) -> str:
        return self.event_headers.get("Event-Name", "")

    @property
    def subclass(self) -> str | None:
        return self.event_headers.get("Event-Subclass")

    @property
    def unique_id(self) -> str | None:
        return self.event_headers.get("Unique-ID")

    @property
    def job_uuid(self) -> str | None:
        return self.event_headers.get("Job-UUID")

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.event_headers.get(name, default)


@dataclass(frozen=True, slots=True)
class DisconnectNotice(EslMessage):
    """FreeSWITCH is closing this socket (shutdown, ``exit``, or the session ended)."""


@dataclass(frozen=True, slots=True)
class LogData(EslMessage):
    """A log line, sent after the ``log <level>`` command."""


@dataclass(frozen=True, slots=True)
class RudeRejection(EslMessage):
    """The inbound ACL refused this client before authentication."""


_SIMPLE_TYPES: dict[str, type[EslMessage]] = {
    "auth/request": AuthRequest,
    "command/reply": CommandReply,
    "api/response": ApiResponse,
    "text/disconnect-notice": DisconnectNotice,
    "log/data": LogData,
    "text/rude-rejection": RudeRejection,
}


def _parse_header_lines(block: bytes, *, url_decode: bool) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in block.decode("utf-8", errors="replace").split("\n"):
        line = raw.rstrip("\r")
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise EslProtocolError(f"header line without ':' ({len(line)} chars)")
        value = value.strip()
        headers[name.strip()] = unquote(value) if url_decode else value
    return headers


def parse_plain_event_body(body: bytes) -> tuple[dict[str, str], str | None]:
    """Split a ``text/event-plain`` body into URL-decoded headers and the inner body."""
    block, sep, rest = body.partition(b"\n\n")
    headers = _parse_header_lines(block, url_decode=True)
    inner: str | None = None
    if "Content-Length" in headers:
        length = _content_length(headers["Content-Length"])
        inner = rest[:length].decode("utf-8", errors="replace")
    elif sep and rest.strip():
        inner = rest.decode("utf-8", errors="replace")
    return headers, inner


def _json_value_to_header(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        # Multi-valued headers: shown the way the plain serializer shows them.
        return "ARRAY::" + "|:".join(str(item) for item in value)
    return json.dumps(value)


def parse_json_event_body(body: bytes) -> tuple[dict[str, str], str | None]:
    """Decode a ``text/event-json`` body; ``_body`` holds the event body."""
    try:
        data = json_object(json.loads(body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EslProtocolError(f"event-json body is not JSON: {exc}") from exc
    if data is None:
        raise EslProtocolError("event-json body is not a JSON object")
    inner = data.pop("_body", None)
    headers = {str(k): _json_value_to_header(v) for k, v in data.items()}
    return headers, None if inner is None else str(inner)


def decode_message(headers: Mapping[str, str], body: bytes) -> EslMessage:
    """Turn one framed packet into its typed message."""
    content_type = headers.get("Content-Type", "")
    if content_type == "text/event-plain":
        event_headers, inner = parse_plain_event_body(body)
        return EslEvent(headers, body, event_headers, inner)
    if content_type == "text/event-json":
        event_headers, inner = parse_json_event_body(body)
        return EslEvent(headers, body, event_headers, inner)
    return _SIMPLE_TYPES.get(content_type, EslMessage)(headers, body)


def _content_length(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise EslProtocolError("Content-Length is not a decimal number")
    length = int(value)
    if length > MAX_BODY:
        raise EslProtocolError(f"Content-Length {length} exceeds {MAX_BODY}")
    return length


class EslParser:
    """Streaming ESL parser: ``feed()`` any chunking of the byte stream, get whole messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pending_headers: dict[str, str] | None = None
        self._pending_length = 0

    def feed(self, data: bytes) -> list[EslMessage]:
        self._buffer.extend(data)
        messages: list[EslMessage] = []
        while (message := self._next()) is not None:
            messages.append(message)
        return messages

    def _next(self) -> EslMessage | None:
        if self._pending_headers is None:
            # FreeSWITCH may emit stray newlines between packets; they are not a header block.
            while self._buffer and self._buffer[0] in b"\r\n":
                del self._buffer[:1]
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BLOCK:
                    raise EslProtocolError("header block too long")
                return None
            headers = _parse_header_lines(bytes(self._buffer[:end]), url_decode=False)
            del self._buffer[: end + 2]
            self._pending_headers = headers
            self._pending_length = (
                _content_length(headers["Content-Length"]) if "Content-Length" in headers else 0
            )
        if len(self._buffer) < self._pending_length:
            return None
        body = bytes(self._buffer[: self._pending_length])
        del self._buffer[: self._pending_length]
        headers, self._pending_headers = self._pending_headers, None
        return decode_message(headers, body)


# --- serializers: client → FreeSWITCH -------------------------------------------------------


def check_wire_value(value: str, what: str = "value") -> str:
    """Refuse CR, LF and NUL: each would end the command line or header early."""
    if any(ch in value for ch in "\r\n\x00"):
        raise UnsafeWireValue(f"{what}: CR, LF and NUL are not allowed in ESL values")
    return value


def encode_command(line: str, headers: Mapping[str, str] | None = None) -> bytes:
    """One command line plus optional ``Name: value`` headers, ended by the blank line."""
    parts = [check_wire_value(line, "command")]
    for name, value in (headers or {}).items():
        check_wire_value(name, "header name")
        if not name or ":" in name:
            raise UnsafeWireValue("header name must be non-empty and without ':'")
        parts.append(f"{name}: {check_wire_value(value, name)}")
    return ("\n".join(parts) + "\n\n").encode("utf-8")


def encode_auth(password: str) -> bytes:
    return encode_command(f"auth {password}")


def encode_api(command: str) -> bytes:
    return encode_command(f"api {command}")


def encode_bgapi(command: str, job_uuid: str | None = None) -> bytes:
    return encode_command(f"bgapi {command}", {"Job-UUID": job_uuid} if job_uuid else None)


def encode_event_subscription(names: Iterable[str], fmt: str = "json") -> bytes:
    if fmt not in ("plain", "json", "xml"):
        raise UnsafeWireValue(f"unknown event format {fmt!r}")
    words = list(names)
    if not words or any(not name or any(ch.isspace() for ch in name) for name in words):
        raise UnsafeWireValue("event names must be non-empty words")
    return encode_command(f"event {fmt} {' '.join(words)}")


def encode_exit() -> bytes:
    return encode_command("exit")


def encode_sendmsg(uuid: str | None, headers: Mapping[str, str]) -> bytes:
    """``sendmsg [<uuid>]`` plus call-command headers (``call-command: execute`` …)."""
    if uuid is not None and (not uuid or any(ch.isspace() for ch in uuid)):
        raise UnsafeWireValue("sendmsg uuid must be one word")
    return encode_command("sendmsg" if uuid is None else f"sendmsg {uuid}", headers)


# --- API output parsers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """One row of ``show channels as json`` (the fields reconciliation needs)."""

    uuid: str
    state: str
    call_state: str
    direction: str
    raw: Mapping[str, str] = field(default_factory=dict, compare=False)


def parse_show_channels_json(text: str) -> list[ChannelInfo]:
    """Parse ``show channels as json``: ``{"row_count": N, "rows": [{"uuid": ...}, ...]}``.

    With no channels FreeSWITCH prints ``{"row_count":0}`` and no ``rows``
    (``mod_commands.c`` ``show_function``, JSON branch).
    """
    try:
        data = json_object(json.loads(text))
    except json.JSONDecodeError as exc:
        raise EslProtocolError(f"show channels: reply is not JSON: {exc}") from exc
    if data is None:
        raise EslProtocolError("show channels: reply is not a JSON object")
    rows = data.get("rows") or []
    if not isinstance(rows, list):
        raise EslProtocolError("show channels: rows is not a list")
    channels = []
    for row in rows:
        if not isinstance(row, dict) or not row.get("uuid"):
            continue
        raw = {str(k): "" if v is None else str(v) for k, v in row.items()}
        channels.append(
            ChannelInfo(
                uuid=raw["uuid"],
                state=raw.get("state", ""),
                call_state=raw.get("callstate", ""),
                direction=raw.get("direction", ""),
                raw=raw,
            )
        )
    return channels
