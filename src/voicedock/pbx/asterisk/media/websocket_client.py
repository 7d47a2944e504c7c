"""``WebSocketClient``: the media websocket voicedock dials (server mode), messages pushed as
they arrive.

A call's media connection carries 50 messages a second each way for as long as the call
lasts. aiohttp's client websocket hands every message to a task waiting in ``receive()``: a
task wake-up per 20 ms frame per call, which at hundreds of calls costs more than the
frame's own decoding. This client speaks the part of RFC 6455 a chan_websocket connection
uses, after its own HTTP/1.1 upgrade (``Sec-WebSocket-Accept`` checked, the ``media``
subprotocol): text and binary messages (fragmented ones reassembled), ping answered with pong,
the close handshake; no extensions (its frames and the upgrade's bytes: ``websocket_wire``).
Once the owner calls ``deliver_to(on_binary, on_text)`` every message is handed to it
synchronously as it is read (a whole unmasked binary frame, the 20 ms frame of audio, without
a copy into the parser's buffer first); before that (MEDIA_START is read so) messages wait
for ``receive()``.

The connection reads into a buffer of its own (``asyncio.BufferedProtocol``): a plain
protocol's transport reads each time into a new 256 KiB block and shrinks it to what came, and
50 times a second per call that block is too large for glibc's heap (``voicedock.allocator``
keeps blocks of 128 KiB and more mapped on their own): a mapping made, shrunk and unmapped per
frame, 17 µs of CPU each on the test machine, where reading into the connection's buffer and
copying out the frame costs next to nothing.

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
import os
import random
import ssl
import struct
from collections import deque
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from aiohttp import WSMsgType

from voicedock.pbx.asterisk.media.websocket_wire import (
    ABNORMAL_CLOSURE,
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Messages,
    WebSocketHandshakeError,
    WebSocketProtocolError,
    encode_frame,
    next_frame,
    read_upgrade_response,
    upgrade_request,
)

__all__ = ["Message", "WebSocketClient", "WebSocketProtocolError"]

T = TypeVar("T")


class Message(NamedTuple):
    """What ``receive()`` returns: the fields of aiohttp's ``WSMessage`` a session reads."""

    type: WSMsgType
    data: str | bytes | int | None


@runtime_checkable
class StreamTransport(Protocol):
    """What the client uses of its connection's transport: uvloop's is no subclass of
    ``asyncio.Transport``, so a transport is recognised by these methods."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...

    def is_closing(self) -> bool: ...


READ_SIZE: Final = 64 * 1024  # the connection's read buffer (a frame of audio is < 1 KiB)


class WebSocketClient(asyncio.BufferedProtocol):
    """One client websocket connection; open with ``await WebSocketClient.connect(url)``."""

    use_mask: Final = True

    def __init__(self, key: bytes, protocols: Sequence[str]) -> None:
        self._key = key
        self._protocols = tuple(protocols)
        self.transport: StreamTransport | None = None
        self.protocol: str | None = None
        """The subprotocol the server chose."""
        self._upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._read = memoryview(bytearray(READ_SIZE))  # what the transport reads into
        self._buffer = bytearray()  # what the parser has not taken yet
        self._messages = Messages()  # the data frames read, as messages
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
                assert client.transport is not None
                client.transport.write(upgrade_request(path, f"{host}:{port}", key, protocols))
                await client._upgraded
        except BaseException as exc:
            if client is not None and client.transport is not None:
                client.transport.abort()  # never upgraded: nothing to close politely
            if isinstance(exc, TimeoutError):
                raise ConnectionError(f"no websocket within {open_timeout:.0f} s") from exc
            raise
        return client

    def _read_upgrade(self) -> None:
        try:
            answer = read_upgrade_response(self._buffer, self._key, self._protocols)
        except WebSocketHandshakeError as exc:
            if not self._upgraded.done():
                self._upgraded.set_exception(exc)
            if self.transport is not None:
                self.transport.close()
            return
        if answer is None:
            return  # the head is not complete yet
        taken, self.protocol = answer
        del self._buffer[:taken]
        self._upgraded.set_result(None)
        if self._buffer:
            self._parse()

    # --- asyncio.BufferedProtocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, StreamTransport):
            raise TypeError(f"{type(transport).__name__} is not a stream transport")
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read

    def buffer_updated(self, nbytes: int) -> None:
        """What was read, copied out of the read buffer, parsed and delivered."""
        data = self._read[:nbytes].tobytes()
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
            self.failure = exc.with_traceback(None)  # its frames hold the transport, and us
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
        if opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
            try:
                message = self._messages.frame(fin, opcode, payload)
            except WebSocketProtocolError as exc:
                self._fail(str(exc), exc.code)
                return False
            if isinstance(message, bytes):
                self._push(Message(WSMsgType.BINARY, message))
            elif message is not None:
                self._push(Message(WSMsgType.TEXT, message))
            return True
        if opcode == OP_CLOSE:
            self._closed_by_peer(payload)
            return False
        if opcode == OP_PING:
            self._write(payload, OP_PONG)
            return True
        if opcode == OP_PONG:
            return True
        self._fail(f"unknown opcode {opcode}", 1002)
        return False

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
        on_binary, on_text, data = self._on_binary, self._on_text, message.data
        if on_binary is not None and on_text is not None:
            if message.type is WSMsgType.BINARY and isinstance(data, bytes):
                self._delivered(on_binary, data)
                return
            if message.type is WSMsgType.TEXT and isinstance(data, str):
                self._delivered(on_text, data)
                return
            self._open = False
        self._queue.append(message)  # before deliver_to, or the end of the connection
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver_binary(self, data: bytes) -> None:
        """The fast path's frame (it runs only once ``deliver_to`` named the handlers)."""
        if self._on_binary is not None:
            self._delivered(self._on_binary, data)

    def _delivered(self, handler: Callable[[T], None], data: T) -> None:
        try:
            handler(data)
        except Exception as exc:  # noqa: BLE001 - the owner's failure ends the connection
            self._owner_failed(exc)

    def _owner_failed(self, exc: Exception) -> None:
        self._open = False
        if self.failure is None:
            self.failure = exc.with_traceback(None)  # its frames hold us
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
            self._write(struct.pack("!H", code), OP_CLOSE)

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
