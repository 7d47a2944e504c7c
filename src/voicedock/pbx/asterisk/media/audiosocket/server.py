"""``AudioSocketServer``: where Asterisk's AudioSocket legs connect, one TCP listener per node.

Before the ARI ``externalMedia`` request, a leg is announced with ``expect()``: it gets a fresh
random UUID, which voicedock hands Asterisk over authenticated ARI (``data``) and Asterisk
sends back as the connection's first message. A connection is handed to the leg whose UUID it
presents; any other is closed. The UUID (122 random bits) is the leg's secret, as a call's
token is on the other media paths: anyone who can reach the port can connect, nobody else
knows a UUID.

Until it has shown a UUID a connection is a stranger and costs little: at most
``max_unauthenticated`` at once (one more is closed at once), each closed unless its UUID
message arrives within ``handshake_seconds``; no message may be longer than a few frames.
Nothing a stranger sends is logged.

    pending = server.expect(label="<media channel id>")
    ...POST /ari/channels/externalMedia?encapsulation=audiosocket&transport=tcp
       &external_host=<media_public_host>:<port>&data=<pending.uuid>&format=slin
    async with await pending.session(wait=5) as media:
        ...
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Self

from voicedock.aio import Closable
from voicedock.domain.audio import AudioFormat
from voicedock.errors import PbxError
from voicedock.media.errors import MediaStartTimeout
from voicedock.media.expected import Expected
from voicedock.media.strangers import Strangers
from voicedock.pbx.asterisk.media.audiosocket import wire
from voicedock.pbx.asterisk.media.audiosocket.session import AudioSocketSession

log = logging.getLogger("voicedock.media")

MAX_UNAUTHENTICATED = 64
HANDSHAKE_SECONDS = 2.0  # Asterisk sends the UUID as soon as it is connected
MAX_MESSAGE = 4 * 1024  # a 20 ms frame of 8 kHz audio is 320 bytes


class PendingAudioSocket:
    """A leg waiting for Asterisk to connect."""

    def __init__(self, server: AudioSocketServer, fmt: AudioFormat, label: str) -> None:
        self.uuid = str(uuid.uuid4())
        self.format = fmt
        self.label = label
        self._server = server
        self._future: asyncio.Future[AudioSocketSession] = (
            asyncio.get_running_loop().create_future()
        )

    async def session(self, wait: float = 5.0) -> AudioSocketSession:
        """The connected session (use it with ``async with``); ``MediaStartTimeout`` if
        Asterisk did not connect in time."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._future), wait)
        except TimeoutError as exc:
            raise MediaStartTimeout(
                f"Asterisk did not connect the AudioSocket leg within {wait} s"
            ) from exc
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop waiting; a connection presenting this UUID later is refused."""
        self._server._forget(self)


class AudioSocketServer(Closable, Strangers):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        handshake_seconds: float = HANDSHAKE_SECONDS,
        max_unauthenticated: int = MAX_UNAUTHENTICATED,
    ) -> None:
        super().__init__(max_unauthenticated)
        self.host = host
        self.port = port
        self.handshake_seconds = handshake_seconds
        self._pending: Expected[PendingAudioSocket] = Expected("this AudioSocket leg is expected")
        self._server: asyncio.Server | None = None

    async def start(self) -> Self:
        """Listen (idempotent); ``PbxError`` naming the address if it cannot."""
        if self._server is None:
            loop = asyncio.get_running_loop()
            try:
                self._server = await loop.create_server(
                    lambda: _Connection(self), self.host, self.port, reuse_address=True
                )
            except OSError as exc:
                raise PbxError(
                    f"cannot listen for AudioSocket on {self.host}:{self.port}: {exc.strerror}"
                ) from exc
            if self.port == 0:
                self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    def expect(self, fmt: AudioFormat, *, label: str) -> PendingAudioSocket:
        """Announce a leg in ``fmt``; ``label``: its media channel, for the log."""
        pending = PendingAudioSocket(self, fmt, label)
        return self._pending.add(pending.uuid, pending)

    def _forget(self, pending: PendingAudioSocket) -> None:
        self._pending.forget(pending.uuid, pending)

    def _claim(self, leg: str | None) -> PendingAudioSocket | None:
        pending = None if leg is None else self._pending.get(leg)
        if pending is None or pending._future.done():
            return None
        self._forget(pending)
        return pending


class _Connection(asyncio.Protocol):
    """One TCP connection: a stranger until its UUID names a waiting leg, then that leg's."""

    def __init__(self, server: AudioSocketServer) -> None:
        self._server = server
        self._reader = wire.MessageReader(max_payload=MAX_MESSAGE)
        self._transport: asyncio.Transport | None = None
        self._session: AudioSocketSession | None = None
        self._stranger = False
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        server = self._server
        if not server.admit_stranger():
            transport.abort()
            return
        self._stranger = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._timer = asyncio.get_running_loop().call_later(server.handshake_seconds, self._refuse)

    def data_received(self, data: bytes) -> None:
        messages = self._reader.feed(data)
        if self._reader.broken:
            if self._session is None:
                self._refuse()
            else:
                self._broken()
            return
        for message in messages:
            session = self._session
            if session is not None:
                session.on_message(message)
            elif not self._hand_over(message):
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self._known()
        if self._session is not None:
            self._session.connection_lost(exc)

    def _hand_over(self, first: wire.Message) -> bool:
        """The first message names the leg; False if it names none waiting (refused)."""
        leg = wire.uuid_of(first.payload) if first.kind == wire.KIND_UUID else None
        pending = self._server._claim(leg)
        if pending is None:
            self._refuse()
            return False
        self._known()
        assert self._transport is not None
        try:
            self._session = AudioSocketSession(self._transport, pending.format, label=pending.label)
        except ValueError as exc:
            log.warning("media %s: %s", pending.label, exc)
            self._transport.close()
            return False
        pending._future.set_result(self._session)
        return True

    def _known(self) -> None:
        """No longer a stranger (named its leg, or gone)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stranger:
            self._stranger = False
            self._server.stranger_known()

    def _refuse(self) -> None:
        self._server.refused += 1
        self._known()
        if self._transport is not None:
            self._transport.abort()

    def _broken(self) -> None:
        session = self._session
        if session is not None:
            log.warning("media %s: AudioSocket framing broken", session.label)
            session.connection_lost(ConnectionError("AudioSocket framing broken"))  # BROKEN
        if self._transport is not None:
            self._transport.abort()
