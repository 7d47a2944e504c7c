"""``WebSocketClient``: the media websocket voicedock dials (server mode), messages pushed as
they arrive.

A call's media connection carries 50 messages a second each way for as long as the call
lasts. aiohttp's client websocket hands every message to a task waiting in ``receive()``: a
task wake-up per 20 ms frame per call, which at hundreds of calls costs more than the
frame's own decoding. This client speaks the part of RFC 6455 a chan_websocket connection
uses, after its own HTTP/1.1 upgrade (``Sec-WebSocket-Accept`` checked, the ``media``
subprotocol): text and binary messages (fragmented ones reassembled), ping answered with pong,
the close handshake; no extensions. Once the owner calls ``deliver_to(on_binary, on_text)``
every message is handed to it synchronously from the protocol's ``data_received`` (a whole
unmasked binary frame, the 20 ms frame of audio, without a copy into a buffer first); before that
(MEDIA_START is read so) messages wait for ``receive()``.

Frames we send are masked with a fresh key each (a client must); ``transport`` is there for
the ``FrameWriter``'s synchronous writes, ``send_str`` for a command. ``close()`` sends our
close frame, waits up to ``close_timeout`` for the peer's and closes the connection
(idempotent). The peer's close code is ``close_code``; a connection that ended without a
close frame reports 1006, a protocol violation closes with 1002/1007/1009 and is ``failure``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import ssl
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple
from urllib.parse import urlsplit

from aiohttp import WSMsgType

OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
_FIN: Final = 0x80
_MASKED: Final = 0x80


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    """RFC 6455 masking (its own inverse): ``payload`` XOR the repeated 4-byte ``mask``."""
    length = len(payload)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        length, "little"
    )


def encode_frame(payload: bytes, opcode: int, mask: bytes | None = None) -> bytes:
    """One unfragmented websocket frame; ``mask`` (4 bytes) is required from a client."""
    length = len(payload)
    mask_bit = _MASKED if mask is not None else 0
    if length < 126:
        header = struct.pack("!BB", _FIN | opcode, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", _FIN | opcode, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", _FIN | opcode, mask_bit | 127, length)
    if mask is None:
        return header + payload
    if len(mask) != 4:
        raise ValueError("a websocket mask is 4 bytes")
    return header + mask + apply_mask(payload, mask)


_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONTINUATION: Final = 0x0
_OP_CLOSE: Final = 0x8
_OP_PING: Final = 0x9
_OP_PONG: Final = 0xA
_MAX_HEADERS: Final = 16 * 1024
MAX_MESSAGE: Final = 4 * 1024 * 1024
"""Largest message accepted (as aiohttp's default); beyond it the connection closes with 1009."""
ABNORMAL_CLOSURE: Final = 1006


def next_frame(
    buffer: bytes | bytearray, pos: int = 0, max_length: int | None = None
) -> tuple[int, bytes, int] | None:
    """The frame starting at ``pos`` in ``buffer``: its first header byte (FIN, RSV, opcode),
    its payload unmasked, and where the next frame starts; None while it is incomplete.
    ``ValueError`` for a payload longer than ``max_length`` (default ``MAX_MESSAGE``)."""
    size = len(buffer)
    if size - pos < 2:
        return None
    first, second = buffer[pos], buffer[pos + 1]
    length = second & 0x7F
    head = pos + 2
    if length == 126:
        if size - head < 2:
            return None
        length = (buffer[head] << 8) | buffer[head + 1]
        head += 2
    elif length == 127:
        if size - head < 8:
            return None
        length = int.from_bytes(buffer[head : head + 8], "big")
        head += 8
    mask = None
    if second & 0x80:
        if size - head < 4:
            return None
        mask = bytes(buffer[head : head + 4])
        head += 4
    if length > (MAX_MESSAGE if max_length is None else max_length):
        raise ValueError(f"a websocket frame of {length} bytes")
    if size - head < length:
        return None
    payload = bytes(buffer[head : head + length])
    return first, payload if mask is None else apply_mask(payload, mask), head + length


class Message(NamedTuple):
    """What ``receive()`` returns: the fields of aiohttp's ``WSMessage`` a session reads."""

    type: WSMsgType
    data: str | bytes | int | None


class WebSocketHandshakeError(ConnectionError):
    """The server did not upgrade the connection to a websocket as asked."""


class WebSocketProtocolError(ConnectionError):
    """The peer broke RFC 6455; ``code`` is the close code we answered with."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class WebSocketClient(asyncio.Protocol):
    """One client websocket connection; open with ``await WebSocketClient.connect(url)``."""

    use_mask: Final = True

    def __init__(self, key: bytes, protocols: Sequence[str]) -> None:
        self._key = key
        self._protocols = tuple(protocols)
        self.transport: asyncio.Transport | None = None
        self.protocol: str | None = None
        """The subprotocol the server chose."""
        self._upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._fragment_size = 0
        self._queue: deque[Message] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._on_binary: Callable[[bytes], None] | None = None
        self._on_text: Callable[[str], None] | None = None
        self._open = False  # upgraded, no close seen, delivering: the fast path may run
        self._random = random.Random()
        self._close_sent = False
        self._close_received = asyncio.Event()
        self._lost = asyncio.Event()
        self.close_code: int | None = None
        self.failure: BaseException | None = None
        """Why the connection failed (a protocol violation, a transport error), if it did."""

    # --- opening ---

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        protocols: Sequence[str] = (),
        open_timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> WebSocketClient:
        """Dial ``ws://`` or ``wss://`` ``url`` and upgrade; ``ConnectionError`` if refused."""
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError("a websocket URL is ws://host[:port]/path or wss://...")
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        key = base64.b64encode(os.urandom(16))
        loop = asyncio.get_running_loop()
        client: WebSocketClient | None = None
        try:
            async with asyncio.timeout(open_timeout):
                _, client = await loop.create_connection(
                    lambda: cls(key, protocols),
                    parts.hostname,
                    port,
                    ssl=(ssl_context or ssl.create_default_context()) if secure else None,
                )
                client._send_upgrade(path, f"{host}:{port}")
                await client._upgraded
        except BaseException as exc:
            if client is not None and client.transport is not None:
                client.transport.abort()  # never upgraded: nothing to close politely
            if isinstance(exc, TimeoutError):
                raise ConnectionError(f"no websocket within {open_timeout:.0f} s") from exc
            raise
        return client

    def _send_upgrade(self, path: str, host: str) -> None:
        assert self.transport is not None
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self._key.decode()}",
            "Sec-WebSocket-Version: 13",
        ]
        if self._protocols:
            lines.append(f"Sec-WebSocket-Protocol: {', '.join(self._protocols)}")
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _read_upgrade(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEADERS:
                self._refuse("the upgrade response headers are too long")
            return
        head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[: end + 4]
        status = head[0].split(" ", 2)
        fields = (line.partition(":") for line in head[1:])
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        accept = base64.b64encode(
            hashlib.sha1(self._key + _GUID, usedforsecurity=False).digest()
        ).decode()
        chosen = headers.get("sec-websocket-protocol") or None
        if len(status) < 2 or status[1] != "101":
            self._refuse(f"the server answered {' '.join(status[1:])[:60]!r}, not 101")
        elif headers.get("upgrade", "").lower() != "websocket":
            self._refuse("the server did not upgrade to websocket")
        elif headers.get("sec-websocket-accept") != accept:
            self._refuse("wrong Sec-WebSocket-Accept")
        elif chosen is not None and chosen not in self._protocols:
            self._refuse(f"the server chose subprotocol {chosen[:40]!r}")
        else:
            self.protocol = chosen
            self._upgraded.set_result(None)
            if self._buffer:
                self._parse()

    def _refuse(self, reason: str) -> None:
        if not self._upgraded.done():
            self._upgraded.set_exception(WebSocketHandshakeError(reason))
        if self.transport is not None:
            self.transport.close()

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self._open and not self._buffer:
            # The usual case: one whole unmasked binary frame (a 20 ms frame of audio).
            size = len(data)
            if (
                size > 4
                and data[0] == 0x82
                and data[1] == 126
                and size == 4 + (data[2] << 8 | data[3])
            ):
                self._deliver_binary(data[4:])
                return
            if size > 2 and data[0] == 0x82 and size == 2 + data[1] and data[1] < 126:
                self._deliver_binary(data[2:])
                return
        self._buffer += data
        if not self._upgraded.done():
            self._read_upgrade()
        elif self._lost.is_set() or self._close_received.is_set():
            self._buffer.clear()
        else:
            self._parse()

    def eof_received(self) -> bool | None:
        return False  # the transport closes itself; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self._open = False
        if not self._upgraded.done():
            self._upgraded.set_exception(
                WebSocketHandshakeError("the connection closed during the upgrade")
            )
        if exc is not None and self.failure is None and not self._close_received.is_set():
            self.failure = exc
        if self.close_code is None:
            self.close_code = ABNORMAL_CLOSURE
        self._lost.set()
        self._push(Message(WSMsgType.CLOSED, None))

    # --- frames in ---

    def _parse(self) -> None:
        buffer = self._buffer
        pos = 0
        while True:
            try:
                found = next_frame(buffer, pos)
            except ValueError:
                self._fail("message too big", 1009)
                return
            if found is None:
                break
            first, payload, pos = found
            if first & 0x70:
                self._fail("reserved bits set without an extension", 1002)
                return
            if not self._frame(bool(first & 0x80), first & 0x0F, payload):
                return
        del buffer[:pos]

    def _frame(self, fin: bool, opcode: int, payload: bytes) -> bool:
        """Handle one frame; False once the connection is closing."""
        if opcode in (OP_TEXT, OP_BINARY):
            if self._fragments:
                self._fail("a new message inside a fragmented one", 1002)
                return False
            if fin:
                return self._message(opcode, payload)
            self._fragment_opcode, self._fragments = opcode, [payload]
            self._fragment_size = len(payload)
            return True
        if opcode == _OP_CONTINUATION:
            if not self._fragments:
                self._fail("a continuation without a message", 1002)
                return False
            self._fragments.append(payload)
            self._fragment_size += len(payload)
            if self._fragment_size > MAX_MESSAGE:
                self._fail("message too big", 1009)
                return False
            if not fin:
                return True
            whole, self._fragments = b"".join(self._fragments), []
            return self._message(self._fragment_opcode, whole)
        if opcode == _OP_CLOSE:
            self._closed_by_peer(payload)
            return False
        if opcode == _OP_PING:
            self._write(payload, _OP_PONG)
            return True
        if opcode == _OP_PONG:
            return True
        self._fail(f"unknown opcode {opcode}", 1002)
        return False

    def _message(self, opcode: int, payload: bytes) -> bool:
        if opcode == OP_BINARY:
            self._push(Message(WSMsgType.BINARY, payload))
            return True
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            self._fail("text that is not UTF-8", 1007)
            return False
        self._push(Message(WSMsgType.TEXT, text))
        return True

    def _closed_by_peer(self, payload: bytes) -> None:
        self._open = False
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        self.close_code = code
        self._close_received.set()
        if not self._close_sent:
            self._send_close(1000 if code in (1005, 1006) else code)
        if self.transport is not None:
            self.transport.close()  # the client may close the TCP connection now
        self._push(Message(WSMsgType.CLOSE, code))

    def _fail(self, reason: str, code: int) -> None:
        self._open = False
        self.failure = WebSocketProtocolError(reason, code)
        if not self._close_sent:
            self._send_close(code)
        if self.transport is not None:
            self.transport.close()
        self._push(Message(WSMsgType.ERROR, None))

    # --- delivery ---

    def _push(self, message: Message) -> None:
        if self._on_binary is not None:
            if message.type is WSMsgType.BINARY:
                self._deliver_binary(message.data)  # type: ignore[arg-type]
                return
            if message.type is WSMsgType.TEXT:
                self._deliver_text(message.data)  # type: ignore[arg-type]
                return
            self._open = False
        self._queue.append(message)  # before deliver_to, or the end of the connection
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver_binary(self, data: bytes) -> None:
        try:
            self._on_binary(data)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the owner's failure ends the connection
            self._owner_failed(exc)

    def _deliver_text(self, text: str) -> None:
        try:
            self._on_text(text)  # type: ignore[misc]
        except Exception as exc:  # noqa: BLE001 - the owner's failure ends the connection
            self._owner_failed(exc)

    def _owner_failed(self, exc: Exception) -> None:
        self._open = False
        if self.failure is None:
            self.failure = exc
        if self.transport is not None:
            self.transport.abort()

    def deliver_to(
        self, on_binary: Callable[[bytes], None], on_text: Callable[[str], None]
    ) -> None:
        """From now on hand every message to ``on_binary`` / ``on_text`` as it arrives
        (messages already waiting first); the end of the connection is ``wait_closed()``."""
        self._on_binary, self._on_text = on_binary, on_text
        data = (WSMsgType.TEXT, WSMsgType.BINARY)
        waiting = [m for m in self._queue if m.type in data]
        self._queue = deque(m for m in self._queue if m.type not in data)
        self._open = not self.closed
        for message in waiting:
            self._push(message)

    async def receive(self) -> Message:
        """The next message (before ``deliver_to``): TEXT, BINARY, then CLOSE, CLOSED or ERROR."""
        while not self._queue:
            if self._lost.is_set():
                return Message(WSMsgType.CLOSED, None)
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._queue.popleft()

    async def wait_closed(self) -> None:
        """Until the connection is gone (closed by either side, or lost)."""
        await self._lost.wait()

    # --- frames out ---

    @property
    def closed(self) -> bool:
        """Closing or closed: nothing more may be sent."""
        return self._close_sent or self._close_received.is_set() or self._lost.is_set()

    def _write(self, payload: bytes, opcode: int) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("media websocket is closed")
        mask = self._random.getrandbits(32).to_bytes(4, "little")
        self.transport.write(encode_frame(payload, opcode, mask))

    async def send_str(self, text: str) -> None:
        if self.closed:
            raise ConnectionResetError("media websocket is closed")
        self._write(text.encode("utf-8"), OP_TEXT)

    def _send_close(self, code: int) -> None:
        self._close_sent = True
        self._open = False
        with contextlib.suppress(ConnectionError):
            self._write(struct.pack("!H", code), _OP_CLOSE)

    async def close(self, *, code: int = 1000, close_timeout: float = 2.0) -> None:
        """Close handshake, then the connection (idempotent)."""
        if not self._close_sent and not self._lost.is_set():
            self._send_close(code)
        if not self._lost.is_set() and not self._close_received.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(close_timeout):
                    await self._close_received.wait()
        if self.transport is not None:
            self.transport.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(close_timeout):
                await self._lost.wait()
        if not self._lost.is_set() and self.transport is not None:
            self.transport.abort()
