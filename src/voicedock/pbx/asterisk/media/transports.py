"""The media legs of one Asterisk server, by transport: what ARI's ``externalMedia`` is asked,
and how the leg's session is reached once Asterisk made the channel.

``MediaTransports.prepare`` readies a leg for the transport the server uses now
(``choice``): a UDP port for RTP (``rtp/ports``), a UUID the AudioSocket listener waits for
(``audiosocket/server``), a token the client-mode websocket acceptor waits for, or nothing
(server-mode websocket). The ``PreparedLeg`` it returns holds the request's parameters; its
``connect`` takes Asterisk's answer (the channel's variables) and gives the session, an async
context manager of ``CallMedia``; ``cancel`` gives back what a leg that was never connected
held. ``keys_over_ari``: the leg's media carries no keys (RTP, AudioSocket), so the caller's
keys reach its session from ARI's ``ChannelDtmfReceived`` (``AsteriskMedia.caller_key``).

Where Asterisk must reach voicedock (RTP, AudioSocket) it is told ``media_public_host``, else
``media_host``, else, when voicedock listens on every address, the address this machine
reaches Asterisk's ARI from. Where voicedock sends RTP is the address Asterisk answered
(``UNICASTRTP_LOCAL_ADDRESS``), or ARI's host when that names none.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import urlsplit

from voicedock.aio import first_of
from voicedock.config import AsteriskSettings
from voicedock.domain.audio import AudioFormat, format_by_name
from voicedock.domain.json import JsonObject
from voicedock.errors import PbxError
from voicedock.pbx.asterisk.media.chan_websocket import CALL_VARIABLE, TOKEN_VARIABLE
from voicedock.pbx.asterisk.media.choice import MediaTransport, TransportChoice

if TYPE_CHECKING:
    from voicedock.media.call_media import CallMedia
    from voicedock.pbx.asterisk.ari.client import AriClient
    from voicedock.pbx.asterisk.media.acceptor import MediaAcceptor, PendingMedia
    from voicedock.pbx.asterisk.media.audiosocket.server import (
        AudioSocketServer,
        PendingAudioSocket,
    )
    from voicedock.pbx.asterisk.media.rtp.ports import RtpPorts

__all__ = ["CONNECT_WAIT", "MediaTransports", "PreparedLeg", "public_host"]

log = logging.getLogger("voicedock.media")
S = TypeVar("S")

# Client mode: how long Asterisk has to connect to us (it gives up after ~0.5 s itself).
CONNECT_WAIT = 5.0
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


class PreparedLeg(Protocol):
    transport: MediaTransport
    keys_over_ari: bool
    format: str
    """The leg's format, as ``externalMedia`` names it."""

    def params(self) -> dict[str, str]:
        """``externalMedia``'s parameters beside ``app``, ``channelId``, ``format`` and
        ``data``."""
        ...

    def variables(self) -> dict[str, str]:
        """The leg's channel variables."""
        ...

    def data(self, call_id: str) -> str:
        """``externalMedia``'s ``data`` (the Stasis arguments of the leg)."""
        ...

    async def connect(
        self, channel_vars: JsonObject, gone: asyncio.Event
    ) -> AbstractAsyncContextManager[CallMedia]:
        """The leg's session once Asterisk made the channel; ``gone`` is set when the channel
        leaves (a leg Asterisk could not connect then fails at once)."""
        ...

    def cancel(self) -> None:
        """Give back what the leg holds, unless its session took it (idempotent)."""
        ...


@dataclass(frozen=True, slots=True)
class SharedMedia:
    """What the node's media legs arrive at, where several servers share it
    (``pbx/asterisk/servers.py``): the client-media acceptor (``media_connection = "client"``),
    the AudioSocket listener and the RTP ports. Each ``None``: the server's own."""

    acceptor: MediaAcceptor | None = None
    audiosocket: AudioSocketServer | None = None
    rtp_ports: RtpPorts | None = None


class MediaTransports:
    """How the legs of one server travel: the transport chosen for it, and the listeners and
    ports that transport needs."""

    def __init__(
        self,
        settings: AsteriskSettings,
        ari: AriClient,
        *,
        acceptor: MediaAcceptor | None = None,
        audiosocket: AudioSocketServer | None = None,
        rtp_ports: RtpPorts | None = None,
    ) -> None:
        self._settings = settings
        self._ari = ari
        self.acceptor = acceptor
        self._audiosocket = audiosocket
        self._rtp_ports = rtp_ports
        self.choice: TransportChoice | None = None
        """What the server's modules and version allow (``None``: not read yet)."""
        self._public_host: str | None = None
        self._asterisk_addresses: frozenset[str] | None = None

    @property
    def transport(self) -> MediaTransport:
        """The transport of the next leg: the chosen one; before the server was read, the
        configured one (``auto``: chan_websocket)."""
        if self.choice is not None:
            if self.choice.transport is None:
                raise PbxError(self.choice.reason)
            return self.choice.transport
        setting = self._settings.media_transport
        return "websocket" if setting == "auto" else setting

    async def prepare(
        self,
        *,
        call_id: str,
        leg: str,
        media_format: str,
        server_websocket: bool = False,
        transport: MediaTransport | None = None,
    ) -> PreparedLeg:
        """Ready a leg of ``call_id`` (its media channel's id ``leg``) in the call format
        ``media_format`` on ``transport`` (default: the server's); ``server_websocket``: a
        chan_websocket leg is voicedock's connection to Asterisk whatever ``media_connection``
        says."""
        fmt = format_by_name(media_format)
        if fmt is None:
            raise PbxError(f"unsupported media format {media_format!r}")
        transport = transport or self.transport
        if transport == "rtp":
            from voicedock.pbx.asterisk.media.rtp import wire as rtp_wire  # the RTP stack
            from voicedock.pbx.asterisk.media.rtp.ports import RtpPorts

            if self._rtp_ports is None:
                s = self._settings
                self._rtp_ports = RtpPorts(s.media_host, s.rtp_port_min, s.rtp_port_max)
            sock = self._rtp_ports.bind()
            try:
                host = await self.public_host()
                asterisk = await self._ari_addresses()
            except BaseException:
                sock.close()
                raise
            ari_host = _ari_host(self._settings.ari_url)
            return _RtpLeg(sock, rtp_wire.leg_format(fmt), host, leg, self._ari, ari_host, asterisk)
        if transport == "audiosocket":
            server = self._audiosocket_server()
            await server.start()
            from voicedock.pbx.asterisk.media.audiosocket import wire

            pending = server.expect(wire.leg_format(fmt), label=leg)
            try:
                host = await self.public_host()
            except BaseException:
                pending.cancel()
                raise
            return _AudioSocketLeg(pending, f"{_host_port(host, server.port)}")
        if self._settings.media_connection == "client" and not server_websocket:
            if self.acceptor is None:
                raise PbxError("client media mode needs voicedock's media endpoint")
            section = self._settings.media_client_connection
            return _ClientWebsocketLeg(self.acceptor.expect(call_id), section, fmt)
        base = self._ari.events_url().rsplit("/ari/events", 1)[0]
        return _ServerWebsocketLeg(base, fmt, self._ari.dialing)

    def _audiosocket_server(self) -> AudioSocketServer:
        if self._audiosocket is None:
            from voicedock.pbx.asterisk.media.audiosocket.server import AudioSocketServer

            s = self._settings
            self._audiosocket = AudioSocketServer(s.media_host, s.audiosocket_port)
        return self._audiosocket

    async def aclose(self) -> None:
        """Stop listening for AudioSocket connections (idempotent)."""
        if self._audiosocket is not None:
            await self._audiosocket.aclose()

    async def _ari_addresses(self) -> frozenset[str]:
        """The addresses of ARI's host (where Asterisk's RTP may also come from); none when
        its name does not resolve."""
        if self._asterisk_addresses is None:
            host = _ari_host(self._settings.ari_url)
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            except OSError:
                infos = []
            self._asterisk_addresses = frozenset(str(info[4][0]) for info in infos)
        return self._asterisk_addresses

    async def public_host(self) -> str:
        """The address Asterisk is told to send the call's audio to."""
        if self._public_host is None:
            self._public_host = await public_host(self._settings)
        return self._public_host


async def public_host(settings: AsteriskSettings) -> str:
    """The address an Asterisk server is told to send RTP or AudioSocket audio to."""
    host = settings.media_public_host or settings.media_host
    if host in _WILDCARDS:
        host = await _source_address_towards(_ari_host(settings.ari_url))
    return host


def _ari_host(ari_url: str) -> str:
    return urlsplit(ari_url).hostname or "127.0.0.1"


def _host_port(host: str, port: int) -> str:
    """``host:port`` as ARI's ``external_host`` takes it (an IPv6 address in brackets)."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


async def _source_address_towards(host: str) -> str:
    """This machine's address on the route to ``host`` (no packet is sent)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
    if not infos:
        raise PbxError(f"cannot resolve ARI's host {host!r}")
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(address)
        return str(probe.getsockname()[0])


class _Leg:
    """What a leg has unless it says otherwise: no channel variables, ``media,<call id>`` as
    its Stasis arguments."""

    def variables(self) -> dict[str, str]:
        return {}

    def data(self, call_id: str) -> str:
        return f"media,{call_id}"


class _ServerWebsocketLeg(_Leg):
    """chan_websocket, voicedock connecting to Asterisk's ``/media/<connection id>``."""

    transport: MediaTransport = "websocket"
    keys_over_ari = False

    def __init__(self, base_url: str, fmt: AudioFormat, connecting: asyncio.Semaphore) -> None:
        self._base = base_url
        self.format = fmt.name
        self._connecting = connecting

    def params(self) -> dict[str, str]:
        return {"transport": "websocket", "encapsulation": "none", "connection_type": "server"}

    async def connect(
        self, channel_vars: JsonObject, gone: asyncio.Event
    ) -> AbstractAsyncContextManager[CallMedia]:
        from voicedock.pbx.asterisk.media.session import MediaSession  # the websocket stack

        connection = str(channel_vars.get("MEDIA_WEBSOCKET_CONNECTION_ID", ""))
        return MediaSession.connect(f"{self._base}/media/{connection}", connecting=self._connecting)

    def cancel(self) -> None:
        pass


class _Pending(Protocol):
    """A leg's session that Asterisk connects to one of voicedock's listeners."""

    async def session(self, wait: float = ...) -> AbstractAsyncContextManager[CallMedia]: ...

    def cancel(self) -> None: ...


class _ConnectingLeg(_Leg):
    """A leg Asterisk connects to voicedock: its session is the one that arrives for it."""

    _pending: _Pending

    def _unreached(self) -> str:
        """What to check when Asterisk could not connect the leg."""
        raise NotImplementedError

    async def connect(
        self, channel_vars: JsonObject, gone: asyncio.Event
    ) -> AbstractAsyncContextManager[CallMedia]:
        return await _arrives(self._pending.session(wait=CONNECT_WAIT), gone, self._unreached())

    def cancel(self) -> None:
        self._pending.cancel()


class _ClientWebsocketLeg(_ConnectingLeg):
    """chan_websocket, Asterisk connecting to voicedock's ``/media`` (``MediaAcceptor``): JSON
    control messages carry the leg's variables, so the connection is matched to its call by
    ``VOICEDOCK_CALL`` and proves it is Asterisk's by the call's token."""

    transport: MediaTransport = "websocket"
    keys_over_ari = False

    _pending: PendingMedia

    def __init__(self, pending: PendingMedia, section: str, fmt: AudioFormat) -> None:
        self._pending = pending
        self._section = section
        self.format = fmt.name

    def params(self) -> dict[str, str]:
        return {
            "transport": "websocket",
            "encapsulation": "none",
            "connection_type": "client",
            "external_host": self._section,
            "transport_data": "f(json)",
        }

    def variables(self) -> dict[str, str]:
        return {CALL_VARIABLE: self._pending.call_id, TOKEN_VARIABLE: self._pending.token}

    def _unreached(self) -> str:
        return (
            "Asterisk could not connect the call's media websocket: check that "
            "websocket_client.conf [voicedock_media] points at voicedock's /media"
        )


class _RtpLeg(_Leg):
    """RTP over UDP: Asterisk sends to voicedock's port, voicedock to the one it answered."""

    transport: MediaTransport = "rtp"
    keys_over_ari = True

    def __init__(
        self,
        sock: socket.socket,
        fmt: AudioFormat,
        host: str,
        label: str,
        ari: AriClient,
        ari_host: str,
        asterisk: frozenset[str] = frozenset(),
    ) -> None:
        """``host``: where Asterisk sends (voicedock's address); ``ari_host``: where voicedock
        sends when Asterisk names no address of its own; ``asterisk``: the addresses
        Asterisk's packets may come from besides the one it names (ARI's host's)."""
        self._sock: socket.socket | None = sock
        self._ari_host = ari_host
        self._asterisk = asterisk
        self._format = fmt
        self.format = fmt.name
        self._host = host
        self._label = label
        self._ari = ari
        self._port = int(sock.getsockname()[1])

    def params(self) -> dict[str, str]:
        return {
            "encapsulation": "rtp",
            "transport": "udp",
            "external_host": _host_port(self._host, self._port),
        }

    async def connect(
        self, channel_vars: JsonObject, gone: asyncio.Event
    ) -> AbstractAsyncContextManager[CallMedia]:
        from voicedock.pbx.asterisk.media.rtp.session import RtpSession

        sock, self._sock = self._sock, None
        if sock is None:
            raise PbxError("the RTP leg was given up")
        address = str(channel_vars.get("UNICASTRTP_LOCAL_ADDRESS", ""))
        try:
            port = int(str(channel_vars.get("UNICASTRTP_LOCAL_PORT", "")))
        except ValueError:
            sock.close()
            raise PbxError("Asterisk named no port for the RTP leg") from None
        if address in _WILDCARDS:
            address = self._ari_host
        label, ari = self._label, self._ari

        async def hang_up() -> None:
            await ari.hangup_channel(label)

        return RtpSession(
            sock,
            self._format,
            (address, port),
            label=label,
            hang_up=hang_up,
            asterisk_hosts=self._asterisk,
        )

    def cancel(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class _AudioSocketLeg(_ConnectingLeg):
    """AudioSocket over TCP: Asterisk connects to voicedock's listener with the leg's UUID."""

    transport: MediaTransport = "audiosocket"
    keys_over_ari = True

    _pending: PendingAudioSocket

    def __init__(self, pending: PendingAudioSocket, external_host: str) -> None:
        self._pending = pending
        self._external_host = external_host
        self.format = pending.format.name

    def params(self) -> dict[str, str]:
        return {
            "encapsulation": "audiosocket",
            "transport": "tcp",
            "external_host": self._external_host,
        }

    def data(self, call_id: str) -> str:
        return self._pending.uuid  # the dial string's UUID, which Asterisk sends back

    def _unreached(self) -> str:
        return (
            "Asterisk could not connect the call's AudioSocket: check that it reaches "
            f"{self._external_host} ([pbx.asterisk] media_public_host, audiosocket_port)"
        )


async def _arrives(session: Awaitable[S], gone: asyncio.Event, failure: str) -> S:
    """The session Asterisk connects; when the leg's channel goes first (Asterisk could not
    reach voicedock), ``PbxError(failure)`` at once instead of after the whole wait."""

    async def destroyed() -> S | None:
        await gone.wait()
        return None

    async def arrived() -> S | None:
        return await session

    first = await first_of(arrived(), destroyed())
    if first is None or first[1] is None:
        raise PbxError(failure)
    return first[1]
