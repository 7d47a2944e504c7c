"""A test double of the ``Pbx`` protocol: records every action, fails on demand, emits events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from voicedock.errors import PbxError
from voicedock.pbx.base import (
    OriginateRequest,
    PbxEvent,
    PbxEventKind,
    PbxEventSink,
    PbxHealth,
    TransferTarget,
)


class FakePbx:
    def __init__(self) -> None:
        self.sink: PbxEventSink | None = None
        self.originated: list[OriginateRequest] = []
        self.hangups: list[tuple[str, str]] = []
        self.transfers: list[tuple[str, TransferTarget]] = []
        self.live: set[str] = set()
        self.fail_next_originate: PbxError | None = None
        self.fail_commands: PbxError | None = None
        self.closed = 0
        self.connected = True  # what health() reports

    async def start(self, sink: PbxEventSink) -> None:
        self.sink = sink

    async def aclose(self) -> None:
        self.closed += 1

    async def originate(self, request: OriginateRequest) -> None:
        if self.fail_next_originate is not None:
            error, self.fail_next_originate = self.fail_next_originate, None
            raise error
        self.originated.append(request)
        self.live.add(request.call_id)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        if self.fail_commands is not None:
            raise self.fail_commands
        self.hangups.append((call_id, reason))

    async def transfer(self, call_id: str, target: TransferTarget) -> None:
        if self.fail_commands is not None:
            raise self.fail_commands
        self.transfers.append((call_id, target))

    async def live_call_ids(self) -> set[str]:
        return set(self.live)

    def health(self) -> PbxHealth:
        return PbxHealth("fake", {"pbx": self.connected})

    # -- test helpers: what a real PBX would report -----------------------------------------

    async def emit(
        self,
        call_id: str,
        kind: PbxEventKind,
        cause: int | None = None,
        tech_cause: int | None = None,
        detail: str = "",
    ) -> None:
        assert self.sink is not None, "start() was not called"
        if kind in (PbxEventKind.HANGUP, PbxEventKind.TRANSFERRED):
            self.live.discard(call_id)
        await self.sink(PbxEvent(call_id, kind, cause, tech_cause, detail=detail))

    async def answer(self, call_id: str) -> None:
        await self.emit(call_id, PbxEventKind.ANSWERED)

    async def hang_up_remote(
        self, call_id: str, cause: int | None = 16, tech_cause: int | None = None
    ) -> None:
        await self.emit(call_id, PbxEventKind.HANGUP, cause, tech_cause)


class MediaFakePbx(FakePbx):
    """A ``MediaPbx`` double: ``call_media`` connects a real ``MediaSession`` to an in-process
    chan_websocket endpoint (``media.fake_asterisk.FakeAsterisk``: anything with ``url(id)``
    and ``channels``). Like Asterisk, hanging up (ours or the remote's) closes the call's media
    websocket; ``hangup`` reports the HANGUP our DELETE causes when ``hangup_reports`` is set.
    """

    def __init__(self, media_server: Any, *, hangup_reports: bool = True) -> None:
        super().__init__()
        self.media_server = media_server
        self.hangup_reports = hangup_reports
        self.fail_media: PbxError | None = None
        self.media_opens: asyncio.Event | None = None  # set: the media leg opens only once set
        self.media_formats: list[tuple[str, str]] = []
        self.media_released: list[str] = []
        self._connections: dict[str, str] = {}

    @asynccontextmanager
    async def call_media(self, call_id: str, *, media_format: str = "ulaw") -> AsyncIterator[Any]:
        from voicedock.pbx.asterisk.media.session import MediaSession

        self.media_formats.append((call_id, media_format))
        try:
            if self.fail_media is not None:
                raise self.fail_media
            if self.media_opens is not None:
                await self.media_opens.wait()  # Asterisk still setting up externalMedia
            connection_id = f"media-{len(self._connections) + 1}"
            self._connections[call_id] = connection_id
            url = self.media_server.url(connection_id)
            async with MediaSession.connect(url, send_silence=False) as media:
                yield media
        finally:
            self.media_released.append(call_id)

    async def hangup(self, call_id: str, reason: str = "normal") -> None:
        await super().hangup(call_id, reason)
        await self._close_media(call_id)
        if self.hangup_reports and call_id in self.live:
            await self.emit(call_id, PbxEventKind.HANGUP, 16)

    async def hang_up_remote(
        self, call_id: str, cause: int | None = 16, tech_cause: int | None = None
    ) -> None:
        await super().hang_up_remote(call_id, cause, tech_cause)
        await self._close_media(call_id)

    async def _close_media(self, call_id: str) -> None:
        channel = self.media_server.channels.get(self._connections.get(call_id, ""))
        if channel is not None:
            await channel.ws.close(code=1000)
