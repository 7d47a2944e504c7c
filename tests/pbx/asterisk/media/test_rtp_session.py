"""``RtpSession`` on real UDP sockets on loopback, with a fake Asterisk UnicastRTP socket: the
caller's packets become frames (comfort noise silence, anything else counted and dropped, a
second source shut out), the assistant's audio goes out as one RTP packet per 20 ms, a
barge-in stops it within a frame or two, and the session ends as Asterisk's channel does."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from pbx.asterisk.media.caller_frames import first_frames
from voicedock.domain.audio import ALAW, ULAW, AudioFormat
from voicedock.media.errors import MediaConnectionLost, MediaSessionClosed
from voicedock.media.transport import CloseReason
from voicedock.pbx.asterisk.media.rtp import wire
from voicedock.pbx.asterisk.media.rtp.session import RtpSession

pytestmark = pytest.mark.unit

HOST = "127.0.0.1"
FRAME = 160
SILENCE = b"\xff" * FRAME
SPEECH = b"\x42" * FRAME


class FakeAsterisk(asyncio.DatagramProtocol):
    """Asterisk's side of the leg: what it received (with the loop's time) and what it sends."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self._arrived = asyncio.Event()
        self._seq = itertools.count(1000)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append((asyncio.get_running_loop().time(), data))
        self._arrived.set()

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def send(self, to: tuple[str, int], payload: bytes = SPEECH, *, pt: int = 0) -> None:
        assert self.transport is not None
        seq = next(self._seq)
        header = struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, seq * 160, 0x5EED)
        self.transport.sendto(header + payload, to)

    def send_raw(self, to: tuple[str, int], datagram: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(datagram, to)

    def packets(self) -> list[wire.RtpPacket]:
        parsed = [wire.parse(data) for _, data in self.received]
        assert all(p is not None for p in parsed)
        return [p for p in parsed if p is not None]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 1.5) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

    def speech_packets(self) -> int:
        return sum(p.payload != SILENCE for p in self.packets())


@asynccontextmanager
async def fake_asterisk(host: str = HOST) -> AsyncIterator[FakeAsterisk]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(FakeAsterisk, local_addr=(host, 0))
    try:
        yield protocol
    finally:
        transport.close()


class Leg:
    """An ``RtpSession`` on a socket of its own, and what its hang-up did."""

    def __init__(self, peer: tuple[str, int], fmt: AudioFormat = ULAW) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = (HOST, int(self.sock.getsockname()[1]))
        self.hung_up = 0
        self.session = RtpSession(self.sock, fmt, peer, label="media-test", hang_up=self._hang_up)

    async def _hang_up(self) -> None:
        await asyncio.sleep(0.01)  # ARI's DELETE takes a moment
        self.hung_up += 1


@asynccontextmanager
async def rtp_leg(
    peer: tuple[str, int] | None = None, fmt: AudioFormat = ULAW
) -> AsyncIterator[tuple[Leg, FakeAsterisk]]:
    async with fake_asterisk() as asterisk:
        leg = Leg(peer or asterisk.address, fmt)
        try:
            async with leg.session:
                yield leg, asterisk
        finally:
            leg.sock.close()  # a test that never entered the session still closes it


async def test_the_callers_packets_are_its_frames() -> None:
    async with rtp_leg() as (leg, asterisk):
        sent = [bytes([i]) * FRAME for i in range(5)]
        for payload in sent:
            asterisk.send(leg.address, payload)
        assert await first_frames(leg.session, 5) == sent
        assert leg.session.packets_received == 5
        assert leg.session.caller.inbound_frames == 5


async def test_frames_go_to_a_consumer_as_they_arrive() -> None:
    async with rtp_leg() as (leg, asterisk):
        got: list[bytes] = []
        leg.session.deliver_audio_to(got.append)
        for i in range(3):
            asterisk.send(leg.address, bytes([i]) * FRAME)
        async with asyncio.timeout(1):
            while len(got) < 3:
                await asyncio.sleep(0.005)
        assert got == [bytes([i]) * FRAME for i in range(3)]


async def test_comfort_noise_is_silence_and_anything_else_is_dropped() -> None:
    async with rtp_leg() as (leg, asterisk):
        asterisk.send_raw(leg.address, b"not an RTP packet")
        asterisk.send(leg.address, b"\x10" * FRAME, pt=8)  # A-law on a µ-law leg
        asterisk.send(leg.address, b"\x05\x00\x00\xa0", pt=101)  # a key event: ARI tells keys
        asterisk.send(leg.address, b"\x40", pt=wire.COMFORT_NOISE)  # RFC 3389: noise level 64
        asterisk.send(leg.address, SPEECH)
        assert await first_frames(leg.session, 2) == [SILENCE, SPEECH]
        assert leg.session.packets_ignored == 3
        assert leg.session.packets_received == 4  # RTP packets, used or not
        await leg.session.aclose()
        assert [digit async for digit in leg.session.dtmf()] == []  # keys come from ARI alone


async def test_an_alaw_leg_sends_and_reads_payload_type_8() -> None:
    async with rtp_leg(fmt=ALAW) as (leg, asterisk):
        asterisk.send(leg.address, b"\x11" * FRAME, pt=0)  # µ-law: not this leg's
        asterisk.send(leg.address, b"\x22" * FRAME, pt=8)
        assert await first_frames(leg.session, 1) == [b"\x22" * FRAME]
        await asterisk.wait_for(lambda: len(asterisk.received) >= 2)
        packets = asterisk.packets()
        assert {p.payload_type for p in packets} == {8}
        assert packets[0].payload == b"\xd5" * FRAME  # A-law silence


async def test_a_second_source_is_shut_out() -> None:
    async with rtp_leg() as (leg, asterisk), fake_asterisk() as stranger:
        asterisk.send(leg.address, b"\x01" * FRAME)
        assert await first_frames(leg.session, 1) == [b"\x01" * FRAME]
        stranger.send(leg.address, b"\x66" * FRAME)
        asterisk.send(leg.address, b"\x02" * FRAME)
        assert await first_frames(leg.session, 1) == [b"\x02" * FRAME]
        assert leg.session.packets_foreign == 1
        assert leg.session.peer == asterisk.address
        await asyncio.sleep(0.06)
        assert stranger.received == []  # the assistant is never heard there


async def test_rtp_from_another_address_than_announced_is_answered_there() -> None:
    # A NAT between the two: Asterisk's packets come from an address it did not name.
    async with fake_asterisk() as announced, rtp_leg(peer=announced.address) as (leg, asterisk):
        asterisk.send_raw(leg.address, b"garbage first")  # not RTP: says nothing of Asterisk
        assert leg.session.peer == announced.address
        asterisk.send(leg.address, b"\x01" * FRAME)
        assert await first_frames(leg.session, 1) == [b"\x01" * FRAME]
        assert leg.session.peer == asterisk.address
        before = len(announced.received)
        await asterisk.wait_for(lambda: len(asterisk.received) >= 3)
        await asyncio.sleep(0.05)
        assert len(announced.received) - before <= 1  # at most one in flight when it moved
        announced.send(leg.address, b"\x77" * FRAME)  # latched: the announced one is foreign now
        asterisk.send(leg.address, b"\x02" * FRAME)
        assert await first_frames(leg.session, 1) == [b"\x02" * FRAME]
        assert leg.session.packets_foreign == 1


async def test_a_stranger_on_another_address_never_takes_the_leg() -> None:
    """Before Asterisk's first packet (a silent far end sends none), RTP from an address that
    is not Asterisk's (127.0.0.2: another host) is neither heard nor answered."""
    async with rtp_leg() as (leg, asterisk), fake_asterisk("127.0.0.2") as stranger:
        stranger.send(leg.address, b"\x66" * FRAME)
        await asyncio.sleep(0.08)
        assert leg.session.peer == asterisk.address
        assert leg.session.packets_foreign == 1
        assert stranger.received == []
        asterisk.send(leg.address, b"\x01" * FRAME)
        assert await first_frames(leg.session, 1) == [b"\x01" * FRAME]


async def test_garbage_from_a_stranger_does_not_move_the_output() -> None:
    async with rtp_leg() as (leg, asterisk), fake_asterisk() as stranger:
        stranger.send_raw(leg.address, b"\x00" * 40)  # not RTP
        await asyncio.sleep(0.08)
        assert leg.session.peer == asterisk.address
        assert stranger.received == []
        assert leg.session.packets_ignored == 1
        assert len(asterisk.received) >= 2  # silence kept going to Asterisk


async def test_silence_goes_out_while_nothing_is_queued() -> None:
    async with rtp_leg() as (_, asterisk):
        await asterisk.wait_for(lambda: len(asterisk.received) >= 5)
        packets = asterisk.packets()
        assert all(p.payload == SILENCE for p in packets)
        assert all(p.payload_type == 0 for p in packets)
        assert packets[0].marker
        assert not any(p.marker for p in packets[1:])


async def test_the_assistants_audio_goes_out_one_packet_per_20ms() -> None:
    async with rtp_leg() as (leg, asterisk):
        playback = leg.session.play(SPEECH * 10)
        result = await asyncio.wait_for(playback.played(), 1.5)
        assert result.completed
        assert result.sent_ms == 200
        await asterisk.wait_for(lambda: len(asterisk.received) >= 22)
        packets = asterisk.packets()
        assert [p.payload for p in packets if p.payload != SILENCE] == [SPEECH] * 10
        assert {len(p.payload) for p in packets} == {FRAME}
        assert len({p.ssrc for p in packets}) == 1
        first = packets[0]
        for i, packet in enumerate(packets):
            assert packet.sequence == (first.sequence + i) & 0xFFFF
            assert packet.timestamp == (first.timestamp + 160 * i) & 0xFFFFFFFF
        times = [t for t, _ in asterisk.received[:22]]
        assert 0.30 <= times[-1] - times[0] <= 0.80  # 21 periods of 20 ms, loosely
        # Never a burst: a late clock catches up at most a few frames at once.
        assert max(sum(t - 0.010 < u <= t for u in times) for t in times) <= 4


async def test_a_barge_in_stops_the_assistant_within_a_frame_or_two() -> None:
    async with rtp_leg() as (leg, asterisk):
        playback = leg.session.play(SPEECH * 50)  # a second of speech
        await asterisk.wait_for(lambda: asterisk.speech_packets() >= 5)
        heard = await leg.session.flush()
        at_flush = asterisk.speech_packets()
        assert heard is not None
        assert not heard.completed
        assert at_flush * 20 - 40 <= heard.heard_ms <= at_flush * 20 + 40
        assert await playback.played() == heard
        await asyncio.sleep(0.12)
        assert asterisk.speech_packets() - at_flush <= 2
        assert asterisk.packets()[-1].payload == SILENCE  # the stream goes on, silent


async def test_asterisk_gone_ends_the_session() -> None:
    async with rtp_leg() as (leg, asterisk):
        asterisk.send(leg.address)
        assert len(await first_frames(leg.session, 1)) == 1
        leg.session.peer_gone()
        assert await asyncio.wait_for(leg.session.wait_closed(), 1) is CloseReason.PEER
        assert leg.session.closed
        async with asyncio.timeout(1):
            assert [f async for f in leg.session.inbound_audio()] == []
        with pytest.raises(MediaConnectionLost):
            leg.session.play(SPEECH)
        assert leg.sock.fileno() == -1
    assert leg.hung_up == 0


async def test_hangup_deletes_the_channel_and_closes() -> None:
    async with rtp_leg() as (leg, asterisk):
        await leg.session.hangup()
        assert leg.hung_up == 1
        assert leg.session.close_reason is CloseReason.HANGUP
        await asyncio.sleep(0)  # the transport closes its socket on the loop's next turn
        assert leg.sock.fileno() == -1
        with pytest.raises(MediaSessionClosed):
            leg.session.play(SPEECH)
        count = len(asterisk.received)
        await asyncio.sleep(0.06)
        assert len(asterisk.received) == count  # nothing more sent


async def test_aclose_is_idempotent_and_closes_the_socket() -> None:
    async with rtp_leg() as (leg, _):
        await leg.session.aclose()
        await leg.session.aclose()
        assert leg.session.close_reason is CloseReason.LOCAL
        await asyncio.sleep(0)  # the transport closes its socket on the loop's next turn
        assert leg.sock.fileno() == -1
        assert await leg.session.wait_closed() is CloseReason.LOCAL
    await leg.session.aclose()  # after the block too


async def test_a_gap_in_the_callers_audio_is_silence() -> None:
    async with rtp_leg() as (leg, asterisk):
        got: list[tuple[float, bytes]] = []
        loop = asyncio.get_running_loop()

        async def listen() -> None:
            async for frame in leg.session.inbound_audio():
                got.append((loop.time(), frame))

        async with asyncio.TaskGroup() as tasks:
            listening = tasks.create_task(listen())
            for i in range(3):
                asterisk.send(leg.address, bytes([i + 1]) * FRAME)
            await asyncio.sleep(0.3)  # the far end sends nothing while its party is silent
            asterisk.send(leg.address, b"\x09" * FRAME)
            await asyncio.sleep(0.02)
            listening.cancel()
        frames_got = [frame for _, frame in got]
        assert frames_got[:3] == [bytes([i + 1]) * FRAME for i in range(3)]
        assert frames_got[-1] == b"\x09" * FRAME
        gap = frames_got[3:-1]
        assert 8 <= len(gap) <= 18  # ~300 ms of silence, from when the audio stopped
        assert set(gap) == {SILENCE}
        assert got[3][0] - got[2][0] < 0.2  # filled once 100 ms passed, not at the end
        assert leg.session.caller.inbound_frames == 4  # the caller's own frames only
