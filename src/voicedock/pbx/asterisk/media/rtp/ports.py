"""``RtpPorts``: the UDP ports of voicedock's side of RTP media legs, from the operator's range.

Each leg takes one even port of ``[pbx.asterisk] rtp_port_min``..``rtp_port_max`` on
``media_host`` (RTP's convention, RFC 3550 §11: the odd one above is RTCP's), the one after the
port taken last, so a port just given back is not taken again at once (a late packet of the
call before it would land in the next one). A port the system refuses (another process holds
it: another node on the machine, another program) is passed over; when no port of the range is
free the leg fails with the range named, for the operator to widen it.
"""

from __future__ import annotations

import ipaddress
import socket

from voicedock.errors import PbxError

__all__ = ["RtpPorts"]


class RtpPorts:
    def __init__(self, host: str, low: int, high: int) -> None:
        self.host = host
        self._family = (
            socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        )
        self._first = low + (low % 2)
        self._count = max(0, (high - self._first) // 2 + 1)
        if self._count == 0:
            raise ValueError(f"no even port in {low}-{high}")
        self.low, self.high = low, high
        self._next = 0  # index of the port tried first next time

    def bind(self) -> socket.socket:
        """A non-blocking UDP socket bound to the next free port of the range."""
        for attempt in range(self._count):
            index = (self._next + attempt) % self._count
            port = self._first + 2 * index
            sock = socket.socket(self._family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            self._next = (index + 1) % self._count
            return sock
        raise PbxError(
            f"no free UDP port for RTP in {self.host}:{self.low}-{self.high} "
            "([pbx.asterisk] rtp_port_min/rtp_port_max)"
        )
