"""``MediaTransports.prepare`` for RTP and AudioSocket legs: what ARI's ``externalMedia`` is
asked (the address Asterisk sends to, IPv6 in brackets, the leg's format, its ``data``), how
the leg's session is reached from Asterisk's answer, and what a leg never connected gives back."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

import msgspec
import pytest

from pbx.asterisk.media.caller_frames import first_frames
from pbx.asterisk.media.test_audiosocket_server import FakeAsterisk
from voicedock.config import AsteriskSettings
from voicedock.domain.json import JsonObject
from voicedock.errors import PbxError
from voicedock.media.errors import MediaConnectionLost
from voicedock.pbx.asterisk.ari.rest import HTTP_CONNECTS_AT_ONCE
from voicedock.pbx.asterisk.media.audiosocket.server import AudioSocketServer
from voicedock.pbx.asterisk.media.choice import TransportChoice
from voicedock.pbx.asterisk.media.clocked_session import ClockedSession
from voicedock.pbx.asterisk.media.rtp.ports import RtpPorts
from voicedock.pbx.asterisk.media.transports import MediaTransports
from voicedock_lab.settings import free_port_range, free_ports

if TYPE_CHECKING:
    from voicedock.pbx.asterisk.ari.client import AriClient

pytestmark = pytest.mark.unit

HOST = "127.0.0.1"


class StubAri:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.dialing = asyncio.Semaphore(HTTP_CONNECTS_AT_ONCE)

    def events_url(self) -> str:
        return "ws://127.0.0.1:8088/ari/events?app=voicedock"

    async def hangup_channel(self, channel_id: str, reason: str = "normal") -> bool:
        self.deleted.append(channel_id)
        return True


def settings(**keys: Any) -> AsteriskSettings:
    return msgspec.structs.replace(AsteriskSettings(), **keys)


def transports(
    config: AsteriskSettings, ari: StubAri | None = None, **parts: Any
) -> MediaTransports:
    return MediaTransports(config, cast("AriClient", ari or StubAri()), **parts)


@pytest.fixture
def rtp_range() -> tuple[int, int]:
    base = free_port_range(4)
    return base, base + 3


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


async def test_an_rtp_leg_asks_asterisk_to_send_to_its_port(rtp_range: tuple[int, int]) -> None:
    low, high = rtp_range
    media = transports(settings(rtp_port_min=low, rtp_port_max=high))
    leg = await media.prepare(call_id="c1", leg="c1-media", media_format="ulaw", transport="rtp")
    try:
        assert leg.transport == "rtp"
        assert leg.keys_over_ari
        assert leg.params() == {
            "encapsulation": "rtp",
            "transport": "udp",
            "external_host": f"{HOST}:{low}",
        }
        assert leg.format == "ulaw"
        assert leg.data("c1") == "media,c1"
        assert leg.variables() == {}
        assert not port_free(low)
    finally:
        leg.cancel()
    assert port_free(low)  # given back
    leg.cancel()  # idempotent


@pytest.mark.parametrize(("call", "wire_format"), [("ulaw", "ulaw"), ("alaw", "alaw")])
async def test_an_rtp_leg_carries_g711_as_it_is(
    rtp_range: tuple[int, int], call: str, wire_format: str
) -> None:
    media = transports(settings(rtp_port_min=rtp_range[0], rtp_port_max=rtp_range[1]))
    leg = await media.prepare(call_id="c", leg="m", media_format=call, transport="rtp")
    leg.cancel()
    assert leg.format == wire_format


async def test_a_wideband_call_has_a_ulaw_rtp_leg(rtp_range: tuple[int, int]) -> None:
    media = transports(settings(rtp_port_min=rtp_range[0], rtp_port_max=rtp_range[1]))
    leg = await media.prepare(call_id="c", leg="m", media_format="slin16", transport="rtp")
    leg.cancel()
    assert leg.format == "ulaw"  # UnicastRTP drops 16 kHz linear from voicedock


@pytest.mark.parametrize(
    ("public", "shown"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8::5", "[2001:db8::5]"),
        ("media.example.com", "media.example.com"),
    ],
)
async def test_the_public_host_is_what_asterisk_is_told(
    rtp_range: tuple[int, int], public: str, shown: str
) -> None:
    low, high = rtp_range
    media = transports(settings(rtp_port_min=low, rtp_port_max=high, media_public_host=public))
    assert await media.public_host() == public
    leg = await media.prepare(call_id="c", leg="m", media_format="ulaw", transport="rtp")
    leg.cancel()
    assert leg.params()["external_host"] == f"{shown}:{low}"


async def test_a_wildcard_media_host_is_told_as_the_address_towards_ari() -> None:
    media = transports(settings(media_host="0.0.0.0", ari_url="http://127.0.0.1:8088/ari"))
    assert await media.public_host() == HOST
    named = transports(settings(media_host="0.0.0.0", media_public_host="198.51.100.7"))
    assert await named.public_host() == "198.51.100.7"
    own = transports(settings(media_host="127.0.0.1", ari_url="http://192.0.2.1:8088/ari"))
    assert await own.public_host() == "127.0.0.1"


async def test_a_wildcard_ipv6_media_host_is_told_as_the_address_towards_ari() -> None:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.connect(("::1", 9))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    media = transports(settings(media_host="::", ari_url="http://[::1]:8088/ari"))
    assert await media.public_host() == "::1"


class FakeUnicastRtp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)


@asynccontextmanager
async def unicast_rtp() -> AsyncIterator[tuple[FakeUnicastRtp, int]]:
    loop = asyncio.get_running_loop()
    transport, fake = await loop.create_datagram_endpoint(FakeUnicastRtp, local_addr=(HOST, 0))
    try:
        yield fake, int(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


@pytest.mark.parametrize("address", [HOST, "0.0.0.0", ""])
async def test_an_rtp_leg_connects_to_the_port_asterisk_answered(
    rtp_range: tuple[int, int], address: str
) -> None:
    ari = StubAri()
    config = settings(
        rtp_port_min=rtp_range[0], rtp_port_max=rtp_range[1], ari_url=f"http://{HOST}:1/ari"
    )
    media = transports(config, ari)
    leg = await media.prepare(call_id="c", leg="c-media", media_format="ulaw", transport="rtp")
    async with unicast_rtp() as (fake, port):
        answer: JsonObject = {
            "UNICASTRTP_LOCAL_ADDRESS": address,
            "UNICASTRTP_LOCAL_PORT": str(port),
        }
        session = await leg.connect(answer, asyncio.Event())
        leg.cancel()  # the session holds the socket now: nothing given back
        async with session as call_media:
            async with asyncio.timeout(1):
                while not fake.received:
                    await asyncio.sleep(0.005)
            assert fake.received[0][1] == 0x80  # µ-law, the first packet marked
            await cast(ClockedSession, call_media).hangup()
    assert ari.deleted == ["c-media"]  # hanging up deletes the leg's channel
    with pytest.raises(PbxError, match="given up"):
        await leg.connect(answer, asyncio.Event())


async def test_an_rtp_leg_without_a_port_from_asterisk_fails(rtp_range: tuple[int, int]) -> None:
    low = rtp_range[0]
    media = transports(settings(rtp_port_min=low, rtp_port_max=rtp_range[1]))
    leg = await media.prepare(call_id="c", leg="m", media_format="ulaw", transport="rtp")
    with pytest.raises(PbxError, match="no port"):
        await leg.connect({"UNICASTRTP_LOCAL_ADDRESS": HOST}, asyncio.Event())
    assert port_free(low)


async def test_the_rtp_ports_given_are_used(rtp_range: tuple[int, int]) -> None:
    low, high = rtp_range
    ports = RtpPorts(HOST, low, high)
    media = transports(settings(rtp_port_min=1024, rtp_port_max=1025), rtp_ports=ports)
    first = await media.prepare(call_id="c", leg="m1", media_format="ulaw", transport="rtp")
    second = await media.prepare(call_id="c", leg="m2", media_format="ulaw", transport="rtp")
    try:
        assert first.params()["external_host"] == f"{HOST}:{low}"
        assert second.params()["external_host"] == f"{HOST}:{low + 2}"
    finally:
        first.cancel()
        second.cancel()


@asynccontextmanager
async def audiosocket_transports() -> AsyncIterator[tuple[MediaTransports, AudioSocketServer]]:
    server = AudioSocketServer(HOST, 0)
    media = transports(settings(media_transport="audiosocket"), audiosocket=server)
    try:
        yield media, server
    finally:
        await media.aclose()


@pytest.mark.parametrize("call", ["ulaw", "alaw", "slin16"])
async def test_an_audiosocket_leg_is_announced_by_its_uuid(call: str) -> None:
    async with audiosocket_transports() as (media, server):
        leg = await media.prepare(call_id="c", leg="c-media", media_format=call)
        assert leg.transport == "audiosocket"
        assert leg.keys_over_ari
        assert leg.params() == {
            "encapsulation": "audiosocket",
            "transport": "tcp",
            "external_host": f"{HOST}:{server.port}",  # listening since prepare
        }
        assert leg.format == "slin"  # 8 kHz linear whatever the call's
        leg_uuid = leg.data("c")
        assert str(uuid.UUID(leg_uuid)) == leg_uuid
        assert leg.variables() == {}
        async with FakeAsterisk.connect(server.port) as asterisk:
            asterisk.hello(leg_uuid)
            asterisk.send(0x10, b"\x07" * 320)
            session = await leg.connect({}, asyncio.Event())
            async with session as call_media:
                frames = await first_frames(cast(ClockedSession, call_media), 1)
                assert frames == [b"\x07" * 320]


async def test_an_audiosocket_leg_asterisk_could_not_connect_fails_at_once() -> None:
    async with audiosocket_transports() as (media, server):
        leg = await media.prepare(call_id="c", leg="c-media", media_format="ulaw")
        gone = asyncio.Event()
        gone.set()  # the leg's channel left before connecting
        with pytest.raises(PbxError, match=f"reaches {HOST}:{server.port}"):
            await asyncio.wait_for(leg.connect({}, gone), 1)


async def test_a_cancelled_audiosocket_leg_is_refused() -> None:
    async with audiosocket_transports() as (media, server):
        leg = await media.prepare(call_id="c", leg="c-media", media_format="ulaw")
        leg.cancel()
        async with FakeAsterisk.connect(server.port) as asterisk:
            asterisk.hello(leg.data("c"))
            assert await asterisk.closed_by_server()
        assert server.refused == 1


async def test_the_audiosocket_listener_from_the_settings_and_its_close() -> None:
    port = free_ports(1)[0]
    media = transports(settings(audiosocket_port=port))
    leg = await media.prepare(call_id="c", leg="m", media_format="ulaw", transport="audiosocket")
    try:
        assert leg.params()["external_host"] == f"{HOST}:{port}"
        _, writer = await asyncio.open_connection(HOST, port)
        writer.close()
        await writer.wait_closed()
    finally:
        leg.cancel()
        await media.aclose()
        await media.aclose()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, port)


async def test_an_unsupported_format_is_refused() -> None:
    with pytest.raises(PbxError, match="g729"):
        await transports(settings()).prepare(
            call_id="c", leg="m", media_format="g729", transport="rtp"
        )


def test_the_transport_before_and_after_the_server_was_read() -> None:
    assert transports(settings()).transport == "websocket"  # auto, before it is known
    assert transports(settings(media_transport="rtp")).transport == "rtp"
    media = transports(settings(media_transport="auto"))
    media.choice = TransportChoice("audiosocket", "Asterisk 22.5.0: media over AudioSocket")
    assert media.transport == "audiosocket"
    reason = "Asterisk 16.2.0 can carry no call audio: no ARI externalMedia"
    media.choice = TransportChoice(None, reason)
    with pytest.raises(PbxError) as refused:
        _ = media.transport
    assert str(refused.value) == reason


async def test_a_leg_takes_the_servers_transport(rtp_range: tuple[int, int]) -> None:
    media = transports(settings(rtp_port_min=rtp_range[0], rtp_port_max=rtp_range[1]))
    media.choice = TransportChoice("rtp", "Asterisk 16.28.0: media over RTP")
    leg = await media.prepare(call_id="c", leg="m", media_format="slin16")
    leg.cancel()
    assert leg.transport == "rtp"
    media.choice = TransportChoice(None, "no transport")
    with pytest.raises(PbxError, match="no transport"):
        await media.prepare(call_id="c", leg="m", media_format="ulaw")


class _EventsAt(StubAri):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def events_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ari/events?app=voicedock"


async def test_media_websockets_are_dialed_a_few_at_a_time() -> None:
    """Asterisk's HTTP server listens with a backlog of 10: a hundred calls answered together
    must not dial it all at once (a lost SYN is dialed again only a second later); the legs
    wait their turn with ARI's connections (``dialing``)."""
    open_now = most = 0

    async def slow_to_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        await asyncio.sleep(0.05)
        open_now -= 1
        writer.close()  # no upgrade: the leg's connect fails, its turn is given on

    server = await asyncio.start_server(slow_to_answer, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    media = transports(settings(), _EventsAt(port))
    legs = [
        await media.prepare(
            call_id=f"c{n}", leg=f"c{n}-media", media_format="ulaw", server_websocket=True
        )
        for n in range(20)
    ]

    async def dial(leg: Any) -> BaseException | None:
        try:
            async with await leg.connect({"MEDIA_WEBSOCKET_CONNECTION_ID": "x"}, asyncio.Event()):
                return None
        except MediaConnectionLost as exc:
            return exc

    async with server:
        failures = await asyncio.gather(*(dial(leg) for leg in legs))
    assert all(isinstance(f, MediaConnectionLost) for f in failures)  # every one dialed
    assert most == HTTP_CONNECTS_AT_ONCE
