"""A DNS server on 127.0.0.1 (UDP, a free port) answering TXT questions from a dict the test
fills: what the operator's resolver would answer about an organization's domain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class TxtRecords:
    """The TXT records served: name (no trailing dot) -> its texts; and the names asked."""

    port: int = 0
    records: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        self.asked.append(name)
        texts = self.records.get(name) if question.rdtype == dns.rdatatype.TXT else None
        if texts is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            quoted = [f'"{text}"' for text in texts]
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, "TXT", quoted)
            )
        return response.to_wire()


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, records: TxtRecords) -> None:
        self._records = records
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.DatagramTransport) -> None:  # type: ignore[override]
        self._transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        self._transport.sendto(self._records.answer(data), addr)


@asynccontextmanager
async def txt_server() -> AsyncIterator[TxtRecords]:
    """A DNS server on 127.0.0.1 serving the yielded records until the block ends."""
    records = TxtRecords()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Protocol(records), local_addr=("127.0.0.1", 0)
    )
    try:
        records.port = transport.get_extra_info("sockname")[1]
        yield records
    finally:
        transport.close()
