"""``RtpPorts``: even ports of the operator's range on loopback, taken in turn from the one
after the port taken last, passing over a port another socket holds, and a failure naming the
range when none is free."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from voicedock.errors import PbxError
from voicedock.pbx.asterisk.media.rtp.ports import RtpPorts
from voicedock_lab.settings import free_port_range

pytestmark = pytest.mark.unit

HOST = "127.0.0.1"


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    """Sockets the test holds, closed after it."""
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def test_even_ports_in_turn_from_the_one_after_the_last(held: list[socket.socket]) -> None:
    base = free_port_range(6)  # three even ports: base, base + 2, base + 4
    ports = RtpPorts(HOST, base, base + 5)
    first = ports.bind()
    held.append(first)
    assert port_of(first) == base
    assert first.type == socket.SOCK_DGRAM
    assert first.getsockname()[0] == HOST
    assert not first.getblocking()
    first.close()  # given back: not taken again at once
    taken = []
    for _ in range(3):
        sock = ports.bind()
        held.append(sock)
        taken.append(port_of(sock))
    assert taken == [base + 2, base + 4, base]  # then round to the start of the range


def test_an_odd_low_end_starts_at_the_even_port_above(held: list[socket.socket]) -> None:
    base = free_port_range(6)
    ports = RtpPorts(HOST, base + 1, base + 4)
    taken = []
    for _ in range(2):
        sock = ports.bind()
        held.append(sock)
        taken.append(port_of(sock))
    assert taken == [base + 2, base + 4]
    with pytest.raises(PbxError):
        ports.bind()


def test_a_port_another_socket_holds_is_passed_over(held: list[socket.socket]) -> None:
    base = free_port_range(6)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held.append(other)
    other.bind((HOST, base + 2))  # another node, another program
    ports = RtpPorts(HOST, base, base + 5)
    taken = []
    for _ in range(2):
        sock = ports.bind()
        held.append(sock)
        taken.append(port_of(sock))
    assert taken == [base, base + 4]


def test_all_ports_held_fails_naming_the_range(held: list[socket.socket]) -> None:
    base = free_port_range(6)
    ports = RtpPorts(HOST, base, base + 5)
    for _ in range(3):
        held.append(ports.bind())
    with pytest.raises(PbxError) as failed:
        ports.bind()
    message = str(failed.value)
    assert f"{HOST}:{base}-{base + 5}" in message
    assert "rtp_port_min" in message
    assert "rtp_port_max" in message
    held.pop().close()  # one given back: taken again
    again = ports.bind()
    held.append(again)
    assert port_of(again) == base + 4


def test_a_range_without_an_even_port_is_refused() -> None:
    with pytest.raises(ValueError, match="no even port in 41001-41001"):
        RtpPorts(HOST, 41001, 41001)
    with pytest.raises(ValueError, match="no even port in 41002-41000"):
        RtpPorts(HOST, 41002, 41000)


def test_an_ipv6_host_binds_an_ipv6_socket(held: list[socket.socket]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    base = free_port_range(2)
    try:
        sock = RtpPorts("::1", base, base + 1).bind()
    except PbxError:
        pytest.skip("::1 is not usable here")
    held.append(sock)
    assert sock.family == socket.AF_INET6
    assert port_of(sock) == base
