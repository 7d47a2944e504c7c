"""Lean chan_websocket load for bench/media_sessions.py: a generator and a reference loop.

* ``Generator`` stands in for Asterisk's ``/media/<id>`` endpoint at scale: raw asyncio
  protocols (no aiohttp), one 20 ms clock for all its channels, and per tick one inbound frame
  written to every channel; what comes back is parsed in place, counted, and played out one
  frame per tick, answering each MARK_MEDIA with MEDIA_MARK_PROCESSED when playout reaches it
  (FLUSH_MEDIA empties the queue, marks included, as chan_websocket does).
  It runs in its own process (``generator_main``), pinned to its own core, and answers
  ``mark`` / ``quiet`` / ``stats`` / ``resume`` / ``stop`` on a pipe.
* ``ReferenceClient`` is the floor to compare voicedock with: per connection µ-law decode +
  webrtcvad of each inbound frame, and one clock writing one freshly µ-law-encoded frame per
  connection per tick. Nothing else: no marks, no queues, no flow control.

Both speak just enough RFC 6455 (one-frame messages, masking from the client).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import random
import time
from collections import deque
from collections.abc import Callable, Collection
from multiprocessing.connection import Connection

import numpy as np

from voicedock.media.codecs import ulaw_decode, ulaw_encode
from voicedock.pbx.asterisk.media.websocket_wire import (
    OP_BINARY,
    OP_TEXT,
    encode_frame,
    next_frame,
)

PERIOD = 0.020
SLOTS = 10  # phases of the period: each connection's frames go out in its own 2 ms slot
FRAME = 160  # µ-law, 20 ms at 8 kHz
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CLOSE = 0x8


def parse_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Take every complete frame off the front of ``buffer`` (masked or not): (opcode, payload)."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while (found := next_frame(buffer, pos, max_length=1 << 62)) is not None:
        first, payload, pos = found
        frames.append((first & 0x0F, payload))
    del buffer[:pos]
    return frames


def speech_like_frames(count: int = 50) -> list[bytes]:
    """µ-law frames of a 300 Hz tone with a slow envelope: VAD sees speech and silence."""
    t = np.arange(count * FRAME) / 8000
    envelope = (np.sin(2 * np.pi * 0.5 * t) > 0).astype(float)
    pcm = (8000 * envelope * np.sin(2 * np.pi * 300 * t)).astype("<i2")
    data = ulaw_encode(pcm)
    return [data[i : i + FRAME] for i in range(0, len(data), FRAME)]


class Ticker:
    """One absolute schedule of ``SLOTS`` ticks per 20 ms calling ``tick(slot, deadline)``:
    like Asterisk's channels, each with its own timer phase, connections are served in slots
    spread over the period rather than all in one burst."""

    def __init__(self, tick: Callable[[int, float], None]) -> None:
        self._tick = tick

    async def run(self) -> None:
        step = PERIOD / SLOTS
        deadline = time.monotonic() + step
        slot = 0
        while True:
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.monotonic()
            if now - deadline > 3 * PERIOD:
                deadline = now
            self._tick(slot, deadline)
            deadline += step
            slot = (slot + 1) % SLOTS


# --- the generator (Asterisk's side) ----------------------------------------------------------


class Channel(asyncio.Protocol):
    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.connection_id = ""
        self.open = False
        self.sent_in = 0  # inbound frames written to voicedock
        self.received_out = 0  # frames voicedock sent us
        self.queue: deque[int | str] = deque()  # playout: frame counts and mark ids
        self.queued = 0
        self.played = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            self._handshake()
            return
        for opcode, payload in parse_frames(self.buffer):
            if opcode == OP_BINARY:
                frames = len(payload) // FRAME
                self.received_out += frames
                self.queue.append(frames)
                self.queued += frames
            elif opcode == OP_TEXT:
                name, _, argument = payload.decode().partition(" ")
                if name == "MARK_MEDIA":
                    self.queue.append(argument)
                elif name == "FLUSH_MEDIA":  # as chan_websocket: frames and marks dropped
                    self.queue.clear()
                    self.queued = 0
            elif opcode == _OP_CLOSE:
                self._close()

    def _handshake(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        request = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        path = request[0].split(" ")[1]
        fields = (line.partition(":") for line in request[1:])
        headers = {k.strip().lower(): v.strip() for k, _, v in fields}
        accept = base64.b64encode(
            hashlib.sha1(headers["sec-websocket-key"].encode() + _GUID).digest()
        ).decode()
        assert self.transport is not None
        self.transport.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: media\r\n\r\n"
            ).encode()
        )
        self.connection_id = path.rsplit("/", 1)[-1]
        start = (
            f"MEDIA_START connection_id:{self.connection_id} channel:WebSocket/bench "
            f"channel_id:{self.connection_id} format:ulaw optimal_frame_size:{FRAME} ptime:20"
        )
        self.transport.write(encode_frame(start.encode(), OP_TEXT))
        self.open = True
        self.generator.channels[self.connection_id] = self

    def tick(self, inbound: bytes | None) -> None:
        transport = self.transport
        if transport is None or not self.open:
            return
        if inbound is not None:
            transport.write(inbound)
            self.sent_in += 1
        played = False
        queue = self.queue
        while queue:  # play one frame, answering the marks in front of it
            head = queue[0]
            if isinstance(head, str):
                queue.popleft()
                event = f"MEDIA_MARK_PROCESSED {head}".encode()
                transport.write(encode_frame(event, OP_TEXT))
                continue
            if played:
                break
            played = True
            self.played += 1
            self.queued -= 1
            if head == 1:
                queue.popleft()
            else:
                queue[0] = head - 1

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(b"\x03\xe8", _OP_CLOSE))
            self.transport.close()
        self.open = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False


class Generator:
    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.quiet = False
        self._inbound = [encode_frame(f, OP_BINARY) for f in speech_like_frames()]
        self._counter = 0

    def tick(self, slot: int, _deadline: float) -> None:
        if slot == 0:
            self._counter += 1
        inbound = None if self.quiet else self._inbound[self._counter % len(self._inbound)]
        for channel in list(self.channels.values())[slot::SLOTS]:
            channel.tick(inbound)

    def stats(self) -> dict[str, tuple[int, int]]:
        return {cid: (ch.sent_in, ch.received_out) for cid, ch in self.channels.items()}


def pin(core: int | Collection[int] | None) -> str:
    """Pin this process to ``core`` (if given: one, or a set the kernel spreads its threads and
    children over); returns the cores it may run on."""
    if core is not None:
        os.sched_setaffinity(0, {core} if isinstance(core, int) else set(core))
    return ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))


def core_times(core: int) -> tuple[int, int]:
    """(busy, total) jiffies of one core from /proc/stat: user, system, irq and softirq (the
    kernel's loopback TCP work) all count as busy, whoever they were done for."""
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{core} "):
                fields = [int(x) for x in line.split()[1:]]
                idle = fields[3] + fields[4]  # idle + iowait
                return sum(fields) - idle, sum(fields)
    return 0, 0


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def generator_main(conn: Connection, core: int | Collection[int] | None, loop_kind: str) -> None:
    """The generator process: serve, report the port and cores, answer the pipe."""
    cores = pin(core)

    async def serve() -> None:
        generator = Generator()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: Channel(generator), "127.0.0.1", 0, backlog=4096)
        conn.send((server.sockets[0].getsockname()[1], cores))
        ticker = asyncio.create_task(Ticker(generator.tick).run())
        requests: asyncio.Queue[str] = asyncio.Queue()
        loop.add_reader(conn.fileno(), lambda: requests.put_nowait(conn.recv()))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while (request := await requests.get()) != "stop":
            if request == "mark":  # the measured window starts
                cpu0, wall0 = time.process_time(), time.perf_counter()
            elif request == "quiet":  # it ends: CPU share over the window, then stop sending
                cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
                generator.quiet = True
            elif request == "resume":
                generator.quiet = False
                generator.channels.clear()
            elif request == "stats":
                conn.send((generator.stats(), cpu))
        loop.remove_reader(conn.fileno())
        ticker.cancel()
        server.close()

    loop = new_loop(loop_kind)
    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()


# --- the reference loop (the floor) ------------------------------------------------------------


class ReferenceConnection(asyncio.Protocol):
    """Decode + VAD in, encode + paced send out, on one websocket client connection."""

    def __init__(self, vad: object | None, opened: asyncio.Future[None]) -> None:
        self.vad = vad
        self.decode = True  # False: count the frames only (bench/media_inbound.py)
        self.opened = opened
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.open = False
        self.inbound_frames = 0
        self.speech_frames = 0
        self.frames_sent = 0
        self.lateness: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            del self.buffer[: end + 4]
            self.open = True
        for opcode, payload in parse_frames(self.buffer):
            if opcode == OP_BINARY and not self.decode:
                self.inbound_frames += len(payload) // FRAME
            elif opcode == OP_BINARY:
                for i in range(0, len(payload), FRAME):
                    self.inbound_frames += 1
                    pcm = ulaw_decode(payload[i : i + FRAME]).tobytes()
                    if self.vad is not None and self.vad.is_speech(pcm, 8000):  # type: ignore[attr-defined]
                        self.speech_frames += 1
            elif (
                opcode == OP_TEXT and payload.startswith(b"MEDIA_START") and not self.opened.done()
            ):
                self.opened.set_result(None)

    def send(self, pcm: np.ndarray, lateness: float, mask: bytes) -> None:
        if self.transport is None or self.transport.is_closing() or not self.opened.done():
            return
        self.transport.write(encode_frame(ulaw_encode(pcm), OP_BINARY, mask))
        self.frames_sent += 1
        self.lateness.append(lateness)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False


async def open_reference(
    port: int, path: str, vad: object | None
) -> tuple[asyncio.Transport, ReferenceConnection]:
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[None] = loop.create_future()
    transport, protocol = await loop.create_connection(
        lambda: ReferenceConnection(vad, opened), "127.0.0.1", port
    )
    key = base64.b64encode(os.urandom(16)).decode()
    transport.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: media\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(opened, 30)
    return transport, protocol


class ReferenceClock:
    """The reference's one clock: per period, encode and send one frame per connection (in
    the connection's slot of the period, as voicedock's clock does)."""

    def __init__(self, connections: list[ReferenceConnection]) -> None:
        self.connections = connections
        self.pcm = [np.frombuffer(ulaw_decode(f).tobytes(), "<i2") for f in speech_like_frames()]
        self.count = 0
        self.running = True
        self._random = random.Random()

    def tick(self, slot: int, deadline: float) -> None:
        if not self.running:
            return
        if slot == 0:
            self.count += 1
        pcm = self.pcm[self.count % len(self.pcm)]
        for connection in self.connections[slot::SLOTS]:
            mask = self._random.getrandbits(32).to_bytes(4, "little")
            connection.send(pcm, time.monotonic() - deadline, mask)
