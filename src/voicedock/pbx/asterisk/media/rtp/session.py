"""``RtpSession``: one call's audio over RTP with Asterisk's UnicastRTP channel.

The leg is a UDP socket of voicedock's (``RtpPorts``) that Asterisk sends the call's audio to
(ARI ``externalMedia`` ``external_host``), and that sends the assistant's audio to the port
Asterisk answered with (``UNICASTRTP_LOCAL_ADDRESS``/``PORT``), one packet per 20 ms frame
(``ClockedSession``). RTP has no connection: the media ends when Asterisk's channel does
(``AsteriskMedia`` calls ``peer_gone`` when it leaves Stasis), and hanging up is deleting
that channel over ARI.

What is read: audio packets of the leg's payload type (``caller.on_binary``) and comfort noise
(RFC 3389: the far end stopped sending while silent) as a frame of silence. Keys are not read
from the media: Asterisk reports them on the caller's channel over ARI, and the owner hands
them to ``caller.digit``. Packets come from the address Asterisk named; if the first ones come
from another port, or another address of Asterisk's (``asterisk_hosts``: the one it named and
ARI's; a NAT between the two), that source is taken instead, as Asterisk's own strict RTP does.
Packets from anywhere else are dropped and counted: a stranger who reaches the port can
neither be heard nor take the assistant's audio.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Unpack, cast

from voicedock.domain.audio import AudioFormat
from voicedock.media.framing import silence_frame
from voicedock.media.transport import CloseReason
from voicedock.pbx.asterisk.media.clocked_session import ClockedOptions, ClockedSession
from voicedock.pbx.asterisk.media.rtp import wire

log = logging.getLogger("voicedock.media")

Address = tuple[str, int]


class RtpSession(ClockedSession, asyncio.DatagramProtocol):
    def __init__(
        self,
        sock: socket.socket,
        fmt: AudioFormat,
        peer: Address,
        *,
        hang_up: Callable[[], Awaitable[object]],
        asterisk_hosts: frozenset[str] = frozenset(),
        **options: Unpack[ClockedOptions],
    ) -> None:
        """``sock``: bound, not yet connected to the loop (``__aenter__`` does); ``peer``:
        where Asterisk's UnicastRTP channel listens; ``hang_up``: deletes that channel;
        ``asterisk_hosts``: other addresses Asterisk's packets may come from (ARI's host)."""
        super().__init__(fmt, **options)
        self._sock = sock
        self.peer = peer
        self._hang_up_channel = hang_up
        self._payload_type = wire.payload_type(fmt)
        self._sender = wire.RtpSender(
            self._payload_type, fmt.sample_rate * 20 // 1000, seed=os.urandom(10)
        )
        self._silence = silence_frame(fmt)
        self._transport: asyncio.DatagramTransport | None = None
        self._latched = False
        # Where Asterisk's packets may come from: the address it named, and those given.
        self._asterisk_hosts = asterisk_hosts | {peer[0]}
        self.packets_received = 0
        self.packets_ignored = 0  # not RTP, or a payload type this leg does not carry
        self.packets_foreign = 0  # from another source than the leg's
        self.send_errors = 0

    @property
    def local_port(self) -> int:
        return int(self._sock.getsockname()[1])

    async def __aenter__(self) -> RtpSession:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=self._sock)
        await super().__aenter__()
        return self

    # --- asyncio.DatagramProtocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is no subclass of asyncio.DatagramTransport.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address | tuple[str, int, int, int]) -> None:
        # An IPv4 socket's source (host, port); an IPv6 one's adds flow info and scope.
        source: Address = (addr[0], addr[1])
        if source != self.peer and (self._latched or source[0] not in self._asterisk_hosts):
            self.packets_foreign += 1
            return
        packet = wire.parse(data)
        if packet is None:
            self.packets_ignored += 1  # and moves nothing: only RTP says where Asterisk is
            return
        if source != self.peer:
            log.info(
                "media %s: Asterisk's RTP comes from another address; answering there", self.label
            )
            self.peer = source
        self._latched = True
        self.packets_received += 1
        kind = packet.payload_type
        if kind == self._payload_type:
            self.caller.on_binary(packet.payload)
        elif kind == wire.COMFORT_NOISE:
            self.caller.on_binary(self._silence)
        else:
            self.packets_ignored += 1

    def error_received(self, exc: Exception) -> None:
        # An ICMP error for a packet sent (Asterisk's port not there yet, or gone): the leg's
        # end is told by its channel, not by the network.
        self.send_errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.close_reason is None:
            log.warning("media %s: RTP socket failed: %s", self.label, exc)
            self._peer_closed(CloseReason.BROKEN)

    # --- ClockedSession ---------------------------------------------------------------------

    def _write_frame(self, frame: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("RTP socket is closed")
        transport.sendto(self._sender.packet(frame), self.peer)

    async def _hang_up(self) -> None:
        await self._hang_up_channel()

    def _close_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()
        else:
            self._sock.close()
