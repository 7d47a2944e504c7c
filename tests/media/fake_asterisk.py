"""An in-process stand-in for Asterisk's chan_websocket ``/media/<id>`` endpoint.

It behaves like the lab Asterisk (findings §2b): MEDIA_START first, 20 ms inbound frames, BINARY
from the app cut into whole frames (partials dropped) into a 1000-frame playout queue played at
one frame per tick, MARK_MEDIA answered with MEDIA_MARK_PROCESSED when playout reaches it, XOFF
at ``xoff_level`` queued frames and XON below ``xon_level``, FLUSH/PAUSE/CONTINUE, GET_STATUS,
HANGUP closing with 1000. Loopback only, port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web


@dataclass
class FakeChannel:
    connection_id: str
    ws: web.WebSocketResponse
    json_format: bool
    queue: deque[bytes | str] = field(default_factory=deque)  # bytes = frame, str = mark id
    played: list[bytes] = field(default_factory=list)
    played_at: list[float] = field(default_factory=list)  # each played frame's loop time
    commands: list[str] = field(default_factory=list)
    marks_processed: list[str] = field(default_factory=list)
    dropped_partial: int = 0
    dropped_full: int = 0
    paused: bool = False
    xoff_sent: bool = False

    @property
    def queued_frames(self) -> int:
        return sum(1 for item in self.queue if isinstance(item, bytes))


class FakeAsterisk:
    def __init__(
        self,
        *,
        fmt: str = "ulaw",
        frame_size: int = 160,
        json_format: bool = False,
        send_audio: bool = True,
        xoff_level: int = 900,
        xon_level: int = 800,
        max_queue: int = 1000,
        tick: float = 0.020,
        channel_variables: dict[str, str] | None = None,
        send_before_start: list[str | bytes] | None = None,
        send_start: bool = True,
    ) -> None:
        self.send_start = send_start
        self.fmt = fmt
        self.frame_size = frame_size
        self.json_format = json_format
        self.send_audio = send_audio
        self.xoff_level = xoff_level
        self.xon_level = xon_level
        self.max_queue = max_queue
        self.tick = tick
        self.channel_variables = channel_variables or {}
        self.send_before_start = send_before_start or []
        self.channels: dict[str, FakeChannel] = {}
        self.connected = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> FakeAsterisk:
        app = web.Application()
        app.router.add_get("/media/{connection_id}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def url(self, connection_id: str = "5e29e219-a229-4e81-b0eb-8b6e5c0a6aba") -> str:
        return f"ws://127.0.0.1:{self.port}/media/{connection_id}"

    def channel(self) -> FakeChannel:
        return next(iter(self.channels.values()))

    # --- Asterisk side of the protocol ---

    def _event(self, name: str, channel_id: str, plain_arg: str = "", **fields: object) -> str:
        if self.json_format:
            return json.dumps({"event": name, "channel_id": channel_id, **fields})
        return f"{name} {plain_arg}".strip()

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        connection_id = request.match_info["connection_id"]
        ws = web.WebSocketResponse(protocols=("media",))
        await ws.prepare(request)
        channel = FakeChannel(connection_id, ws, self.json_format)
        self.channels[connection_id] = channel
        channel_id = f"fake-{len(self.channels)}.1"
        for early in self.send_before_start:
            if isinstance(early, bytes):
                await ws.send_bytes(early)
            else:
                await ws.send_str(early)
        if self.send_start:
            await ws.send_str(self._media_start(connection_id, channel_id))
        self.connected.set()
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._playout(channel, channel_id))]
            if self.send_audio:
                tasks.append(tg.create_task(self._inbound(channel)))
            try:
                await self._receive(channel, channel_id)
            finally:
                for task in tasks:
                    task.cancel()
        return ws

    def _media_start(self, connection_id: str, channel_id: str) -> str:
        name = f"WebSocket/INCOMING/0x{id(self):x}"
        if self.json_format:
            variables = {"MEDIA_WEBSOCKET_CONNECTION_ID": connection_id, **self.channel_variables}
            return json.dumps(
                {
                    "event": "MEDIA_START",
                    "connection_id": connection_id,
                    "channel": name,
                    "channel_id": channel_id,
                    "format": self.fmt,
                    "optimal_frame_size": self.frame_size,
                    "ptime": 20,
                    "channel_variables": variables,
                }
            )
        return (
            f"MEDIA_START connection_id:{connection_id} channel:{name} channel_id:{channel_id} "
            f"format:{self.fmt} optimal_frame_size:{self.frame_size} ptime:20"
        )

    async def _inbound(self, channel: FakeChannel) -> None:
        counter = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while not channel.ws.closed:
            payload = bytes([counter % 256]) * self.frame_size
            with contextlib.suppress(ConnectionError):
                await channel.ws.send_bytes(payload)
            counter += 1
            deadline += self.tick
            await asyncio.sleep(max(0.0, deadline - loop.time()))

    async def _playout(self, channel: FakeChannel, channel_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while not channel.ws.closed:
            deadline += self.tick
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if channel.paused:
                continue
            played_frame = False
            while channel.queue:
                item = channel.queue[0]
                if isinstance(item, str):
                    channel.queue.popleft()
                    channel.marks_processed.append(item)
                    await channel.ws.send_str(
                        self._event("MEDIA_MARK_PROCESSED", channel_id, item, correlation_id=item)
                    )
                    continue
                if played_frame:
                    break
                channel.played.append(channel.queue.popleft())
                channel.played_at.append(loop.time())
                played_frame = True
            if channel.xoff_sent and channel.queued_frames < self.xon_level:
                channel.xoff_sent = False
                await channel.ws.send_str(self._event("MEDIA_XON", channel_id))

    async def _receive(self, channel: FakeChannel, channel_id: str) -> None:
        async for message in channel.ws:
            if message.type is WSMsgType.BINARY:
                await self._on_audio(channel, channel_id, message.data)
            elif message.type is WSMsgType.TEXT and await self._on_command(
                channel, channel_id, message.data
            ):
                return

    async def _on_audio(self, channel: FakeChannel, channel_id: str, data: bytes) -> None:
        size = self.frame_size
        whole = len(data) - len(data) % size
        channel.dropped_partial += len(data) - whole
        for start in range(0, whole, size):
            if channel.queued_frames >= self.max_queue:
                channel.dropped_full += 1
                continue
            channel.queue.append(data[start : start + size])
        if not channel.xoff_sent and channel.queued_frames >= self.xoff_level:
            channel.xoff_sent = True
            await channel.ws.send_str(self._event("MEDIA_XOFF", channel_id))

    async def _on_command(self, channel: FakeChannel, channel_id: str, text: str) -> bool:
        if len(text.encode()) > 128:
            return False  # Asterisk drops long commands silently
        if text.startswith("{"):
            body = json.loads(text)
            name, argument = body["command"], body.get("correlation_id", "")
        else:
            name, _, argument = text.partition(" ")
        channel.commands.append(text)
        if name == "MARK_MEDIA":
            channel.queue.append(argument)
        elif name == "FLUSH_MEDIA":
            channel.queue.clear()
        elif name == "PAUSE_MEDIA":
            channel.paused = True
        elif name == "CONTINUE_MEDIA":
            channel.paused = False
        elif name == "GET_STATUS":
            flags = {
                "queue_length": channel.queued_frames,
                "xon_level": self.xon_level,
                "xoff_level": self.xoff_level,
                "queue_full": channel.queued_frames >= self.max_queue,
                "bulk_media": False,
                "media_paused": channel.paused,
            }
            plain = " ".join(
                f"{k}:{str(v).lower() if isinstance(v, bool) else v}" for k, v in flags.items()
            )
            await channel.ws.send_str(
                self._event("STATUS", channel_id, f"channel_id:{channel_id} {plain}", **flags)
            )
        elif name == "HANGUP":
            await channel.ws.close(code=1000)
            return True
        return False
