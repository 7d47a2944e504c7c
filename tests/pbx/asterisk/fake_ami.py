"""A tiny AMI server on 127.0.0.1 speaking the real wire format, for AmiClient tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class FakeAmi:
    drop_after_originate_queued: bool = False
    answer_pings: bool = True
    actions: list[dict[str, str]] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    def count(self, action: str) -> int:
        return sum(1 for a in self.actions if a.get("action", "").lower() == action.lower())

    async def start(self) -> FakeAmi:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def aclose(self) -> None:
        for writer in self._writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        writer.write(b"Asterisk Call Manager/13.0.0\r\n")
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                headers: dict[str, str] = {}
                for line in block.decode().split("\r\n"):
                    if ": " in line:
                        key, value = line.split(": ", 1)
                        headers.setdefault(key.lower(), value)
                self.actions.append(headers)
                if not await self._reply(headers, writer):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _reply(self, headers: dict[str, str], writer: asyncio.StreamWriter) -> bool:
        action = headers.get("action", "").lower()
        aid = headers.get("actionid", "")
        if action == "login":
            writer.write(
                f"Response: Success\r\nActionID: {aid}\r\n"
                "Message: Authentication accepted\r\n\r\n"
                "Event: FullyBooted\r\nPrivilege: system,all\r\n"
                "Status: Fully Booted\r\n\r\n".encode()
            )
        elif action == "ping":
            if self.answer_pings:
                writer.write(
                    f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n"
                    "Timestamp: 1795246930.360509\r\n\r\n".encode()
                )
        elif action == "originate":
            writer.write(
                f"Response: Success\r\nActionID: {aid}\r\n"
                "Message: Originate successfully queued\r\n\r\n".encode()
            )
            await writer.drain()
            if self.drop_after_originate_queued:
                return False
        else:
            writer.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
        await writer.drain()
        return True
